//go:build linux

package xdp_udp_ports

import (
	"errors"
	"fmt"
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
	done    chan struct{} // closed by Stop
	wg      sync.WaitGroup
	running bool
	snap    bpf.Snapshot // reused by Gather
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
	p.settings = s
	return nil
}

// Start loads the program once per interface and attaches it to every
// matching interface. Only configuration problems stop it: missing
// capabilities, or exact names that do not exist with
// missing_interfaces = "error". Failures on one interface are reported
// through acc.AddError and retried at every resync.
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
	loader, err := bpf.NewLoader()
	if err != nil {
		return fmt.Errorf("loading the XDP program: %w%s", err, hint(err, bpf.ModeAuto))
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("opening a netlink socket: %w", err)
	}
	links, err := nl.LinkList()
	if err != nil {
		nl.Close()
		return fmt.Errorf("listing interfaces: %w", err)
	}
	if err := p.checkMissing(links); err != nil {
		nl.Close()
		return err
	}
	if p.settings.fragsAlways && !loader.FragsSupported() {
		p.Log.Warn(`xdp_frags = "always": this kernel has no multi-buffer XDP (Linux 5.18+); using the plain program`)
	}

	p.mu.Lock()
	p.loader, p.acc, p.nl = loader, acc, nl
	p.ifaces = make(map[string]*iface)
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

// Gather emits the counters of every attached interface, all with one
// timestamp.
func (p *XDPUDPPorts) Gather(acc telegraf.Accumulator) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return nil
	}
	now := time.Now()
	names := make([]string, 0, len(p.ifaces))
	for name, it := range p.ifaces {
		if it.att != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		it := p.ifaces[name]
		it.counters.Snapshot(&p.snap)
		p.emit(acc, it, &p.snap, now)
	}
	return nil
}

func (p *XDPUDPPorts) emit(acc telegraf.Accumulator, it *iface, s *bpf.Snapshot, now time.Time) {
	if p.settings.destination {
		emitPorts(acc, it.name, roleDestination, s.Destination, s.DestinationOther, now)
	}
	if p.settings.source {
		emitPorts(acc, it.name, roleSource, s.Source, s.SourceOther, now)
	}
	sum := s.Summary
	acc.AddCounter(measurementInterface, map[string]any{
		"packets":           int64(sum.Packets),
		"bytes":             int64(sum.Bytes),
		"udp_packets":       int64(sum.UDPPackets),
		"udp_bytes":         int64(sum.UDPBytes),
		"udp_fragments":     int64(sum.UDPFragments),
		"other_packets":     int64(sum.OtherPackets),
		"malformed_packets": int64(sum.MalformedPackets),
	}, map[string]string{"interface": it.name, "xdp_mode": it.att.Mode.String()}, now)
}

func emitPorts(acc telegraf.Accumulator, ifname, role string, ports []bpf.PortCount, other bpf.Counter, now time.Time) {
	add := func(port string, c bpf.Counter) {
		acc.AddCounter(measurementPorts,
			map[string]any{"packets": int64(c.Packets), "bytes": int64(c.Bytes)},
			map[string]string{"interface": ifname, "port": port, "port_role": role}, now)
	}
	for _, pc := range ports {
		add(strconv.Itoa(int(pc.Port)), pc.Counter)
	}
	if other.Packets > 0 {
		add("other", other)
	}
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
	p.nl, p.loader, p.acc = nil, nil, nil
}
