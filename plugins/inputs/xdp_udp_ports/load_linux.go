//go:build linux

package xdp_udp_ports

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/vishvananda/netlink"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

func (p *XDPUDPPorts) bpfConfig() bpf.Config {
	return bpf.Config{CountSource: p.settings.source, Ports: p.settings.ports, Frags: p.settings.fragsAlways}
}

func (p *XDPUDPPorts) pinDir(name string) string { return filepath.Join(p.settings.pinPath, name) }

// open returns the counters of a new interface name (its kernel memory is
// reserved by the caller): with pin_path, those pinned by an earlier run
// (and their still attached program, if any) when they fit this
// configuration; otherwise new ones, pinned when pin_path is set.
func (p *XDPUDPPorts) open(name string, ifindex int) (*bpf.Counters, *bpf.Attachment, error) {
	cfg := p.bpfConfig()
	if p.settings.pinPath != "" {
		dir := p.pinDir(name)
		c, att, err := p.loader.LoadPinned(dir, cfg, ifindex)
		switch {
		case err == nil:
			p.Log.Infof("interface %s: adopted the counters pinned in %s", name, dir)
			return c, att, nil
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, bpf.ErrPinMismatch):
			p.Log.Warnf("interface %s: %s was pinned by another program version or configuration (ports, port_roles or CPU count); replacing it: its counts restart from zero", name, dir)
		default:
			p.Log.Warnf("interface %s: cannot adopt %s (%v); replacing it: its counts restart from zero", name, dir, err)
		}
		if err := bpf.RemovePins(dir); err != nil {
			return nil, nil, fmt.Errorf("interface %s: removing old pins in %s: %w", name, dir, err)
		}
	}
	c, err := p.loader.Load(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("interface %s: loading the XDP program: %w%s", name, err, hint(err, bpf.ModeAuto))
	}
	if p.settings.pinPath != "" {
		if err := c.Pin(p.pinDir(name)); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("interface %s: %w", name, err)
		}
	}
	return c, nil, nil
}

// netlink's IFLA_XDP_ATTACHED values.
var attachedModes = map[uint32]bpf.Mode{1: bpf.ModeNative, 2: bpf.ModeGeneric, 3: bpf.ModeOffload}

// adopt keeps a pinned attachment whose program is still the one attached
// to this interface, in a mode the configuration allows; otherwise it
// detaches it.
// It reports whether it was kept. Called with p.mu held.
func (p *XDPUDPPorts) adopt(it *iface, att *bpf.Attachment, a *netlink.LinkAttrs) bool {
	if att == nil {
		return false
	}
	mode, known := bpf.Mode(0), false
	if x := a.Xdp; x != nil && x.Attached && x.ProgId == uint32(att.ProgramID()) {
		mode, known = attachedModes[x.AttachMode]
	}
	want := p.settings.mode
	if !known || (want != bpf.ModeAuto && want != mode) {
		if err := att.Detach(); err != nil {
			p.Log.Debugf("detaching the pinned program from %s: %v", it.name, err)
		}
		return false
	}
	att.Mode = mode
	it.att, it.index, it.lastErr = att, a.Index, ""
	p.Log.Infof("interface %s: adopted the pinned program, attached in %s mode; counting went on while the plugin was stopped", it.name, mode)
	return true
}
