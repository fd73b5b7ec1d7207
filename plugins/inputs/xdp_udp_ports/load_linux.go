//go:build linux

package xdp_udp_ports

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

func (p *XDPUDPPorts) bpfConfig(frame bpf.Frame) bpf.Config {
	return bpf.Config{CountSource: p.settings.source, Ports: p.settings.ports, Frags: p.settings.fragsAlways, Frame: frame}
}

// pinDir is where one interface's counting in one direction is pinned:
// pin_path/<interface>/<direction>.
func (p *XDPUDPPorts) pinDir(name string, d bpf.Direction) string {
	return filepath.Join(p.settings.pinPath, name, d.String())
}

// open loads the counters of a counting that has none (its kernel memory
// is reserved by the caller): with pin_path, those pinned by an earlier
// run when they fit this configuration, with their still attached
// program if it is where this configuration attaches; otherwise new ones,
// pinned when pin_path is set. It reports whether the counting is
// attached now (adopted).
func (p *XDPUDPPorts) open(it *iface, c *counting, a *netlink.LinkAttrs, frame bpf.Frame) bool {
	cfg := p.bpfConfig(frame)
	if p.settings.pinPath != "" {
		dir := p.pinDir(it.name, c.dir)
		counters, att, err := p.loader.LoadPinned(dir, cfg, a.Index, c.dir)
		switch {
		case err == nil:
			p.Log.Infof("interface %s: %s: adopted the counters pinned in %s", it.name, c, dir)
			c.counters = counters
			c.series = p.restoreSeries(dir, counters)
			return p.adopt(it, c, att, a)
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, bpf.ErrPinMismatch):
			p.Log.Warnf("interface %s: %s was pinned by another program version or configuration (ports, port_roles, link type or CPU count); replacing it: its counts restart from zero", it.name, dir)
		case errors.Is(err, bpf.ErrOwnedByLiveProcess):
			c.memory = 0
			p.report(c, fmt.Errorf("interface %s: %s: %w", it.name, c, err))
			return true
		default:
			p.Log.Warnf("interface %s: cannot adopt %s (%v); replacing it: its counts restart from zero", it.name, dir, err)
		}
		if err := bpf.RemovePins(dir); err != nil {
			c.memory = 0
			p.report(c, fmt.Errorf("interface %s: removing old pins in %s: %w", it.name, dir, err))
			return true
		}
	}
	counters, err := p.loader.Load(cfg)
	if err != nil {
		c.memory = 0
		p.report(c, fmt.Errorf("interface %s: %s: loading the counter maps: %w%s", it.name, c, err, hint(err, bpf.HookNone)))
		return true
	}
	c.counters = counters
	c.series = newSeriesState(p.settings.maxPorts)
	if p.settings.pinPath != "" {
		dir := p.pinDir(it.name, c.dir)
		if err := p.pinCounters(dir, counters, c.series); err != nil {
			p.acc.AddError(fmt.Errorf("interface %s: %s: %w; its counts restart when the plugin restarts", it.name, c, err))
		}
	}
	return false
}

// pinCounters pins new counters and their series state in dir (and
// pin_path/<interface>, mode 0700).
func (p *XDPUDPPorts) pinCounters(dir string, counters *bpf.Counters, s *seriesState) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("creating pin directory: %w", err)
	}
	if err := counters.Pin(dir); err != nil {
		return err
	}
	return s.pin(dir)
}

// adopt keeps a pinned attachment whose program is still attached where
// this configuration attaches; otherwise it detaches it. It reports
// whether it was kept. Called with p.mu held.
func (p *XDPUDPPorts) adopt(it *iface, c *counting, att *bpf.Attachment, a *netlink.LinkAttrs) bool {
	if att == nil {
		return false
	}
	if att.Hook == bpf.HookNone || att.Check() != nil || !p.wantsHook(it, c, a, att) {
		if err := att.Detach(); err != nil {
			p.Log.Debugf("detaching the pinned program from %s: %v", it.name, err)
		}
		return false
	}
	p.attached(it, c, att)
	p.Log.Infof("interface %s: adopted the pinned %s program at %s; counting went on while the plugin was stopped", it.name, c, att.Hook)
	return true
}

// removeEmptyDir removes dir if it is empty, ignoring errors (a mount
// point or a directory others still use stays).
func removeEmptyDir(dir string) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) == 0 {
		os.Remove(dir)
	}
}
