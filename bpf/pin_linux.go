package bpf

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Pins of one instance, in a directory of their own on a bpffs.
const (
	pinMeta     = "meta" // fingerprint of program and layout
	pinCounters = "counters"
	pinBSS      = "bss"
	pinRodata   = "rodata"
	pinLink     = "link" // the bpf_link (XDP, tcx)
	// PinState is the file name a caller may pin state of its own under,
	// beside the counters (RemovePins removes it too).
	PinState = "state"
	pinProg  = "prog" // the program, where attached through netlink or as a clsact filter
)

func pinPath(dir, name string) string { return filepath.Join(dir, name) }

var pinnedMaps = map[string]string{
	pinCounters: xdpUdpPortsMapCounters,
	pinBSS:      ".bss",
	pinRodata:   ".rodata",
}

// ErrPinMismatch means pinned state was made by another program version or
// configuration (ports, roles, CPU count) and cannot be adopted.
var ErrPinMismatch = errors.New("pinned state does not match this program and configuration")

// fingerprint identifies the program (the embedded ELF) and the layout: a
// pinned instance is adopted only if it is equal.
func fingerprint(l Layout) []byte {
	buf := slices.Clone(_XdpUdpPortsBytes)
	for _, v := range []int{l.CPUs, l.PortSlots, l.SrcBase, l.SlotsPerCPU, int(l.Frame)} {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
	}
	for _, port := range l.Ports {
		buf = binary.LittleEndian.AppendUint16(buf, port)
	}
	sum := sha256.Sum256(buf)
	return sum[:]
}

// Pin pins the instance's maps in dir (created with mode 0700) together
// with its fingerprint.
func (c *Counters) Pin(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating pin directory: %w", err)
	}
	meta, err := ebpf.NewMap(&ebpf.MapSpec{Name: "xdp_udp_meta", Type: ebpf.Array, KeySize: 4, ValueSize: sha256.Size, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("creating the fingerprint map: %w", err)
	}
	defer meta.Close()
	if err := meta.Put(uint32(0), fingerprint(c.layout)); err != nil {
		return fmt.Errorf("writing the fingerprint: %w", err)
	}
	for file, name := range pinnedMaps {
		if err := c.maps[name].Pin(pinPath(dir, file)); err != nil {
			return fmt.Errorf("pinning map %s: %w", name, err)
		}
	}
	// The fingerprint goes last: a directory without it is incomplete and
	// never adopted.
	if err := meta.Pin(pinPath(dir, pinMeta)); err != nil {
		return fmt.Errorf("pinning the fingerprint: %w", err)
	}
	return nil
}

// LoadPinned adopts the instance pinned in dir by Pin, with the attachment
// pinned there if any, taken to be at direction d of ifindex (an XDP one
// whose program is no longer the interface's has Hook HookNone). It
// returns fs.ErrNotExist if nothing complete is pinned and ErrPinMismatch
// if the pins were made for another program or configuration.
func (l *Loader) LoadPinned(dir string, cfg Config, ifindex int, d Direction) (*Counters, *Attachment, error) {
	layout, err := l.Layout(cfg)
	if err != nil {
		return nil, nil, err
	}
	meta, err := ebpf.LoadPinnedMap(pinPath(dir, pinMeta), nil)
	if err != nil {
		return nil, nil, err
	}
	var got [sha256.Size]byte
	err = meta.Lookup(uint32(0), &got)
	meta.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the pinned fingerprint: %w", err)
	}
	if !bytes.Equal(got[:], fingerprint(layout)) {
		return nil, nil, ErrPinMismatch
	}
	spec, err := l.configuredSpec(layout)
	if err != nil {
		return nil, nil, err
	}
	c := l.newCounters(layout, spec, cfg)
	c.maps = map[string]*ebpf.Map{}
	for file, name := range pinnedMaps {
		m, err := ebpf.LoadPinnedMap(pinPath(dir, file), nil)
		if err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("loading pinned map %s: %w", name, err)
		}
		c.maps[name] = m
	}
	if err := c.mmap(); err != nil {
		c.Close()
		return nil, nil, err
	}
	a, err := l.loadPinnedAttachment(dir, ifindex, d)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, a, nil
}

// loadPinnedAttachment loads the link (or, for netlink XDP and clsact
// filter attachments, the program) pinned in dir; nil if there is none or
// its program is no longer attached at ifindex.
func (l *Loader) loadPinnedAttachment(dir string, ifindex int, d Direction) (*Attachment, error) {
	a := &Attachment{Dir: d, Ifindex: ifindex}
	lk, err := link.LoadPinnedLink(pinPath(dir, pinLink), nil)
	switch {
	case err == nil:
		a.impl = &bpfLink{link: lk}
		if info, err := lk.Info(); err == nil && info.TCX() != nil {
			a.Hook = HookTCX
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("loading the pinned link: %w", err)
	default:
		path := pinPath(dir, pinProg)
		prog, err := ebpf.LoadPinnedProgram(path, nil)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("loading the pinned program: %w", err)
		}
		defer prog.Close()
		info, err := prog.Info()
		if err != nil {
			return nil, err
		}
		id, _ := info.ID()
		if prog.Type() == ebpf.SchedCLS {
			f, err := l.qdiscs.adoptFilter(id, ifindex, d)
			if err != nil || f == nil {
				return nil, err
			}
			f.pinned = path
			a.Hook, a.impl = HookTC, f
		} else {
			lock, err := lockOwner(ifindex, "xdp", fmt.Sprintf("the XDP program on ifindex %d", ifindex))
			if err != nil {
				return nil, err
			}
			a.impl = &netlinkXDP{held: held{prog: id, pinned: path, lock: lock}, ifindex: ifindex}
		}
	}
	if a.Hook == HookNone { // XDP: the interface says in which mode
		a.Hook = xdpHookOf(ifindex, a.ProgramID())
	}
	a.Variant = Plain
	if a.Hook == HookTC || a.Hook == HookTCX {
		a.Variant = TC
	} else if name := programName(a.ProgramID()); name == programNames[Frags] {
		a.Variant = Frags
	}
	return a, nil
}

// RemovePins detaches a pinned link or program in dir, removes the pinned
// maps and the directory. Entries it does not know are left alone (and then
// so is the directory).
func RemovePins(dir string) error {
	var errs []error
	if lk, err := link.LoadPinnedLink(pinPath(dir, pinLink), nil); err == nil {
		errs = append(errs, (&bpfLink{link: lk}).detach())
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("loading the pinned link: %w", err))
	}
	if prog, err := ebpf.LoadPinnedProgram(pinPath(dir, pinProg), nil); err == nil {
		info, ierr := prog.Info()
		if ierr == nil {
			id, _ := info.ID()
			if prog.Type() == ebpf.SchedCLS {
				errs = append(errs, removeFiltersEverywhere(id))
			} else {
				errs = append(errs, detachEverywhere(id))
			}
		}
		errs = append(errs, ierr, prog.Close())
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("loading the pinned program: %w", err))
	}
	for _, file := range []string{pinMeta, pinCounters, pinBSS, pinRodata, pinLink, pinProg, PinState} {
		if err := os.Remove(pinPath(dir, file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
