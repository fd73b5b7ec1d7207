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
	h := sha256.New()
	h.Write(_XdpUdpPortsBytes)
	binary.Write(h, binary.LittleEndian, []uint64{uint64(l.CPUs), uint64(l.PortSlots), uint64(l.SrcBase), uint64(l.SlotsPerCPU)})
	binary.Write(h, binary.LittleEndian, l.Ports)
	return h.Sum(nil)
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
// pinned there if any (its Mode is unknown here: ModeAuto). It returns
// fs.ErrNotExist if nothing complete is pinned and ErrPinMismatch if the
// pins were made for another program or configuration.
func (l *Loader) LoadPinned(dir string, cfg Config) (*Counters, *Attachment, error) {
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
	spec := l.spec.Copy()
	if err := configure(spec, layout); err != nil {
		return nil, nil, err
	}
	c := &Counters{layout: layout, spec: spec, maps: map[string]*ebpf.Map{}, fragsOK: l.frags}
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
	lk, err := link.LoadPinnedLink(filepath.Join(dir, pinLink), nil)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil, nil
	}
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("loading the pinned link: %w", err)
	}
	a := &Attachment{link: lk, Mode: ModeAuto, Variant: Plain}
	if info, err := lk.Info(); err == nil {
		if prog, err := ebpf.NewProgramFromID(info.Program); err == nil {
			if pi, err := prog.Info(); err == nil && pi.Name == programNames[Frags] {
				a.Variant = Frags
			}
			prog.Close()
		}
	}
	return c, a, nil
}

// Pin pins the attachment's link in dir: it then stays attached when the
// process exits, until Detach or RemovePins.
func (a *Attachment) Pin(dir string) error {
	if err := a.link.Pin(filepath.Join(dir, pinLink)); err != nil {
		return fmt.Errorf("pinning the XDP link: %w", err)
	}
	return nil
}

// Ifindex returns the interface the link is attached to; 0 once the
// interface is gone.
func (a *Attachment) Ifindex() int {
	info, err := a.link.Info()
	if err != nil || info.XDP() == nil {
		return 0
	}
	return int(info.XDP().Ifindex)
}

// ProgramID returns the id of the attached program.
func (a *Attachment) ProgramID() ebpf.ProgramID {
	info, err := a.link.Info()
	if err != nil {
		return 0
	}
	return info.Program
}

// Detach detaches the program, removes the link's pin, if any, and
// closes it.
func (a *Attachment) Detach() error {
	if a == nil || a.link == nil {
		return nil
	}
	err := detach(a.link)
	a.link = nil
	return err
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
	if lk, err := link.LoadPinnedLink(filepath.Join(dir, pinLink), nil); err == nil {
		errs = append(errs, detach(lk))
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("loading the pinned link: %w", err))
	}
	for _, file := range []string{pinMeta, pinCounters, pinBSS, pinRodata, pinLink} {
		if err := os.Remove(filepath.Join(dir, file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
