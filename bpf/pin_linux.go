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
	pinLink     = "link"
	pinProg     = "prog" // the program, where attached through netlink
)

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
	for _, v := range []int{l.CPUs, l.PortSlots, l.SrcBase, l.SlotsPerCPU} {
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
		if err := c.maps[name].Pin(filepath.Join(dir, file)); err != nil {
			return fmt.Errorf("pinning map %s: %w", name, err)
		}
	}
	// The fingerprint goes last: a directory without it is incomplete and
	// never adopted.
	if err := meta.Pin(filepath.Join(dir, pinMeta)); err != nil {
		return fmt.Errorf("pinning the fingerprint: %w", err)
	}
	return nil
}

// LoadPinned adopts the instance pinned in dir by Pin, with the attachment
// pinned there if any (its Mode is unknown here: ModeAuto; a netlink
// attachment is taken to be on ifindex). It returns fs.ErrNotExist if
// nothing complete is pinned and ErrPinMismatch if the pins were made for
// another program or configuration.
func (l *Loader) LoadPinned(dir string, cfg Config, ifindex int) (*Counters, *Attachment, error) {
	layout, err := l.Layout(cfg)
	if err != nil {
		return nil, nil, err
	}
	meta, err := ebpf.LoadPinnedMap(filepath.Join(dir, pinMeta), nil)
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
	c := &Counters{layout: layout, spec: spec, maps: map[string]*ebpf.Map{}, fragsOK: l.frags, netlink: l.netlink}
	if cfg.Frags && l.frags {
		c.variant = Frags
	}
	for file, name := range pinnedMaps {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, file), nil)
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
	a, err := loadPinnedAttachment(dir, ifindex)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, a, nil
}

// loadPinnedAttachment loads the link (or, for netlink attachments, the
// program) pinned in dir; nil if there is none.
func loadPinnedAttachment(dir string, ifindex int) (*Attachment, error) {
	a := &Attachment{Mode: ModeAuto, Variant: Plain}
	lk, err := link.LoadPinnedLink(filepath.Join(dir, pinLink), nil)
	switch {
	case err == nil:
		a.link = lk
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("loading the pinned link: %w", err)
	default:
		path := filepath.Join(dir, pinProg)
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
		a.nl = &netlinkAttachment{ifindex: ifindex, prog: id, pinned: path}
	}
	if prog, err := ebpf.NewProgramFromID(a.ProgramID()); err == nil {
		if pi, err := prog.Info(); err == nil && pi.Name == programNames[Frags] {
			a.Variant = Frags
		}
		prog.Close()
	}
	return a, nil
}

// Pin pins the attachment's link (for netlink attachments, its program)
// in dir: it then stays attached when the process exits, until Detach or
// RemovePins.
func (a *Attachment) Pin(dir string) error {
	if a.nl != nil {
		path := filepath.Join(dir, pinProg)
		if err := a.nl.program.Pin(path); err != nil {
			return fmt.Errorf("pinning the XDP program: %w", err)
		}
		a.nl.pinned = path
		return nil
	}
	if err := a.link.Pin(filepath.Join(dir, pinLink)); err != nil {
		return fmt.Errorf("pinning the XDP link: %w", err)
	}
	return nil
}

// ProgramID returns the id of the attached program.
func (a *Attachment) ProgramID() ebpf.ProgramID {
	if a.nl != nil {
		return a.nl.prog
	}
	info, err := a.link.Info()
	if err != nil {
		return 0
	}
	return info.Program
}

// Detach detaches the program, removes its pin, if any, and releases the
// attachment.
func (a *Attachment) Detach() error {
	switch {
	case a == nil:
		return nil
	case a.nl != nil:
		err := a.nl.detach()
		a.nl = nil
		return err
	case a.link != nil:
		err := detach(a.link)
		a.link = nil
		return err
	}
	return nil
}

func detach(l link.Link) error {
	var errs []error
	if err := l.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, l.Unpin(), l.Close())...)
}

// RemovePins detaches a pinned link in dir, removes the pinned maps and
// the directory. Entries it does not know are left alone (and then so is
// the directory).
func RemovePins(dir string) error {
	var errs []error
	if a, err := loadPinnedAttachment(dir, 0); err != nil {
		errs = append(errs, err)
	} else if a != nil && a.nl != nil {
		errs = append(errs, detachEverywhere(a.nl.prog))
	} else if a != nil {
		errs = append(errs, a.Detach())
	}
	for _, file := range []string{pinMeta, pinCounters, pinBSS, pinRodata, pinLink, pinProg} {
		if err := os.Remove(filepath.Join(dir, file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
