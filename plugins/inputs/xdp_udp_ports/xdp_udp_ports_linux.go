//go:build linux

package xdp_udp_ports

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/vishvananda/netlink"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// runtime is the state between Start and Stop.
type runtime struct {
	mu      sync.Mutex
	loader  *bpf.Loader
	acc     telegraf.Accumulator
	ifaces  map[string]*iface // by name; a name keeps its counters
	nl      *netlink.Handle
	pinLock io.Closer     // flock on pin_path, held while running
	done    chan struct{} // closed by Stop
	wg      sync.WaitGroup
	running bool
	snap    bpf.Snapshot    // reused by Gather
	idle    map[string]bool // globs that matched nothing when last checked
	sysfs   string          // sysfs root for driver lookups; "" = /sys (tests set it)
}

// Init validates the configuration; nothing is loaded or attached.
func (p *XDPUDPPorts) Init() error {
	s, err := p.parseSettings()
	if err != nil {
		return err
	}
	if s.pinPath != "" {
		if err := checkPinPath(s.pinPath); err != nil {
			return err
		}
	}
	if err := checkMemory(s); err != nil {
		return err
	}
	p.settings = s
	return nil
}

// Start loads the program once per interface and direction and attaches
// it to every matching interface. Only configuration problems stop it:
// missing capabilities, exact names that do not exist with
// missing_interfaces = "error", a pin_path another running instance holds.
// Failures on one interface are reported through acc.AddError and
// retried at every resync.
func (p *XDPUDPPorts) Start(acc telegraf.Accumulator) error {
	if p.settings == nil {
		if err := p.Init(); err != nil {
			return err
		}
	}
	if p.running {
		return errors.New("already started")
	}
	if err := checkCapabilities(); err != nil {
		return err
	}
	var lock io.Closer
	if p.settings.pinPath != "" {
		var err error
		if lock, err = LockPinPath(p.settings.pinPath); err != nil {
			return err
		}
	}
	fail := func(err error) error {
		if lock != nil {
			lock.Close()
		}
		return err
	}
	loader, err := bpf.NewLoader()
	if err != nil {
		return fail(fmt.Errorf("loading the BPF program: %w%s", err, hint(err, bpf.HookNone)))
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		return fail(fmt.Errorf("opening a netlink socket: %w", err))
	}
	links, err := nl.LinkList()
	if err != nil {
		nl.Close()
		return fail(fmt.Errorf("listing interfaces: %w", err))
	}
	if err := p.checkMissing(links); err != nil {
		nl.Close()
		return fail(err)
	}
	if p.settings.fragsAlways && !loader.FragsSupported() {
		p.Log.Warn(`xdp_frags = "always": this kernel has no multi-buffer XDP (Linux 5.18+); using the plain program`)
	}

	p.mu.Lock()
	p.loader, p.acc, p.nl, p.pinLock = loader, acc, nl, lock
	p.ifaces = make(map[string]*iface)
	p.idle = make(map[string]bool)
	p.done = make(chan struct{})
	p.running = true
	p.reconcile(links)
	p.mu.Unlock()

	p.wg.Add(1)
	go p.watch()
	return nil
}

// checkMissing fails on exact interface names that do not exist, unless
// missing_interfaces = "wait".
func (p *XDPUDPPorts) checkMissing(links []netlink.Link) error {
	if p.settings.waitMissing {
		return nil
	}
	present := make(map[string]bool, len(links))
	for _, l := range links {
		present[l.Attrs().Name] = true
	}
	var missing []string
	for name := range p.settings.include.exact {
		if !present[name] {
			missing = append(missing, strconv.Quote(name))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("interfaces: no such interface %s (set missing_interfaces = \"wait\" to attach when it appears)", joinList(missing))
}

// warnUnmatched warns once about every glob of interfaces that matches no
// interface (also after excludes), again only after it matched something
// in between. Called with p.mu held.
func (p *XDPUDPPorts) warnUnmatched(links []netlink.Link) {
	for _, g := range p.settings.include.globs {
		matched := slices.ContainsFunc(links, func(l netlink.Link) bool {
			return globMatch(g, l.Attrs().Name) && !p.settings.exclude.match(l.Attrs().Name)
		})
		switch {
		case matched:
			delete(p.idle, g)
		case !p.idle[g]:
			p.idle[g] = true
			p.Log.Warnf("interfaces: %q matches no interface (yet); interfaces that appear and match are attached", g)
		}
	}
}

// Gather emits the counters of every interface that exists, all with one
// timestamp: per port while attached, and the summary with attached = 1,
// or attached = 0 while the interface is not attached (its per-port series
// pause then).
func (p *XDPUDPPorts) Gather(acc telegraf.Accumulator) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return nil
	}
	now := time.Now()
	names := make([]string, 0, len(p.ifaces))
	for name, it := range p.ifaces {
		if it.index != 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		it := p.ifaces[name]
		for _, c := range it.dirs {
			p.emit(acc, it, c, now)
		}
	}
	return nil
}

// emit writes one counting's metrics.
func (p *XDPUDPPorts) emit(acc telegraf.Accumulator, it *iface, c *counting, now time.Time) {
	if c.hook == bpf.HookNone {
		return // refused before any hook was chosen (link type)
	}
	s := &p.snap
	if c.counters != nil {
		c.counters.Snapshot(s)
	} else {
		s.Summary = bpf.Summary{} // not loaded (yet): nothing counted
	}
	dir := c.dir.String()
	if c.att != nil && c.series != nil {
		for _, role := range p.roles() {
			ports, other := roleCounts(s, role)
			add := func(port string, n bpf.Counter) {
				acc.AddCounter(measurementPorts,
					map[string]any{"packets": int64(n.Packets), "bytes": int64(n.Bytes)},
					map[string]string{"interface": it.name, "direction": dir, "port": port, "port_role": role.String()}, now)
			}
			r := c.series.roles[role].emit(ports, other, add)
			if r.limitReached {
				p.Log.Warnf("interface %s: %s: %s ports: max_ports (%d) reached; the traffic of every further port is summed into port=\"other\" (the kernel still counts each; xdp_udp_ports top shows them all)",
					it.name, dir, role, p.settings.maxPorts)
			}
			if r.changed {
				if err := c.series.save(role); err != nil {
					p.Log.Warnf("interface %s: %s: %v", it.name, dir, err)
				}
			}
		}
	}
	sum := s.Summary
	if c.series == nil || !c.series.summary {
		// A new summary series starts with zeros (see portSeries).
		sum = bpf.Summary{}
		if c.series != nil {
			c.series.summary = true
		}
	}
	attached := int64(0)
	if c.att != nil {
		attached = 1
	}
	acc.AddCounter(measurementInterface, map[string]any{
		"attached":          attached,
		"packets":           int64(sum.Packets),
		"bytes":             int64(sum.Bytes),
		"udp_packets":       int64(sum.UDPPackets),
		"udp_bytes":         int64(sum.UDPBytes),
		"udp_fragments":     int64(sum.UDPFragments),
		"other_packets":     int64(sum.OtherPackets),
		"malformed_packets": int64(sum.MalformedPackets),
	}, map[string]string{"interface": it.name, "direction": dir, "hook": c.hook.String()}, now)
}

// roles are the port roles configured.
func (p *XDPUDPPorts) roles() []bpf.Role {
	var out []bpf.Role
	if p.settings.destination {
		out = append(out, bpf.Destination)
	}
	if p.settings.source {
		out = append(out, bpf.Source)
	}
	return out
}

// Stop detaches every program and frees the maps (with pin_path set, the
// pinned programs stay attached and keep counting). It is idempotent and
// no metric or error is written after it returns.
func (p *XDPUDPPorts) Stop() {
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return
	}
	p.running = false
	close(p.done)
	p.mu.Unlock()

	p.wg.Wait()

	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeAll()
	p.nl.Close()
	if p.pinLock != nil {
		p.pinLock.Close()
	}
	p.nl, p.loader, p.acc, p.pinLock = nil, nil, nil, nil
}
