//go:build linux

package xdp_udp_ports

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// iface is one interface name. Its countings live as long as the plugin
// runs (they continue when the interface is re-created), until the name is
// absent for longer than absent_interface_timeout.
type iface struct {
	name   string
	index  int       // ifindex the countings are attached to, 0 while absent
	absent time.Time // when it was last seen gone (zero while present)
	dirs   []*counting
}

// counting is what one interface counts in one direction: its own counter
// maps and program (one per interface and direction, so the packet path
// needs no lookup) and the attachment of that program, whatever the hook.
// Everything the lifecycle does, it does the same way for every counting.
type counting struct {
	dir      bpf.Direction
	counters *bpf.Counters   // nil until loaded
	att      *bpf.Attachment // nil while not attached
	hook     bpf.Hook        // the hook in use, else the one last tried (the hook tag)
	memory   uint64          // kernel memory reserved for counters (0: none)
	lastErr  string          // last error reported, reported again only when it changes
	choice   string          // why the hook was chosen, logged when it changes
	series   *seriesState    // what is emitted: seats, leading zeros
}

func (c *counting) String() string { return c.dir.String() }

// linkEventBuffer is the netlink receive buffer for link events, large
// enough for hundreds of interfaces appearing at once.
const linkEventBuffer = 4 << 20

// watch follows link events and resyncs every resync_interval (events can
// be missed, and nothing tells a process that its program was detached),
// until Stop.
func (p *XDPUDPPorts) watch() {
	defer p.wg.Done()
	ticker := time.NewTicker(p.settings.resync)
	defer ticker.Stop()
	var updates chan netlink.LinkUpdate
	var unsubscribe chan struct{}
	subscribe := func() {
		updates, unsubscribe = make(chan netlink.LinkUpdate, 256), make(chan struct{})
		done := unsubscribe
		err := netlink.LinkSubscribeWithOptions(updates, unsubscribe, netlink.LinkSubscribeOptions{
			ReceiveBufferSize: linkEventBuffer,
			ErrorCallback: func(err error) {
				select {
				case <-done: // our own unsubscribe closed the socket
				default:
					p.Log.Debugf("link events: %v", err)
				}
			},
		})
		if err != nil {
			p.Log.Warnf("subscribing to link events: %v; relying on resync every %s", err, p.settings.resync)
			updates, unsubscribe = nil, nil
		}
	}
	unsub := func() {
		if unsubscribe == nil {
			return
		}
		close(unsubscribe)
		for range updates { // let the reader goroutine finish
		}
		updates, unsubscribe = nil, nil
	}
	subscribe()
	defer func() { unsub() }()
	for {
		select {
		case <-p.done:
			return
		case u, ok := <-updates:
			if !ok { // overflow or socket error: resubscribe and resync now
				unsub()
				subscribe()
				p.resync()
				continue
			}
			p.mu.Lock()
			if p.running {
				p.linkUpdate(u)
			}
			p.mu.Unlock()
		case <-ticker.C:
			if updates == nil {
				subscribe()
			}
			p.resync()
		}
	}
}

// resync checks every attachment, attaches to every matching interface,
// retries failed ones and frees the counters of long-absent ones.
func (p *XDPUDPPorts) resync() {
	links, err := p.nl.LinkList()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	if err != nil {
		p.acc.AddError(fmt.Errorf("listing interfaces: %w", err))
		return
	}
	p.checkAttachments(links)
	p.reconcile(links)
	p.expireAbsent(time.Now())
}

// checkAttachments finds attachments whose program was detached from
// outside (bpftool, ip, tc, another tool, an unpin): no event says so.
// Each is reported with what took its place and released; reconcile then
// attaches again where the hook is free, and the counters continue.
// Interfaces that are gone or were re-created (not in links with their
// ifindex) are left to reconcile. Called with p.mu held.
func (p *XDPUDPPorts) checkAttachments(links []netlink.Link) {
	present := indexByName(links)
	for _, it := range p.ifaces {
		if present[it.name] != it.index {
			continue
		}
		for _, c := range it.dirs {
			if c.att == nil {
				continue
			}
			err := c.att.Check()
			if err == nil {
				continue
			}
			var de *bpf.DetachedError
			if errors.As(err, &de) {
				err = fmt.Errorf("interface %s: %w; counting paused (attached = 0) until it can attach again, checked every resync_interval (%s)",
					it.name, err, p.settings.resync)
			} else {
				err = fmt.Errorf("interface %s: %s: checking the attachment: %w", it.name, c, err)
			}
			p.report(c, err)
			p.release(it, c)
		}
	}
}

// release closes a counting's attachment (detaching it unless pinned).
// Called with p.mu held.
func (p *XDPUDPPorts) release(it *iface, c *counting) {
	if c.att == nil {
		return
	}
	if err := c.att.Close(); err != nil {
		p.Log.Debugf("releasing the %s attachment of %s: %v", c, it.name, err)
	}
	c.att = nil
}

// reconcile makes the attachments match the interfaces in links.
// Called with p.mu held.
func (p *XDPUDPPorts) reconcile(links []netlink.Link) {
	present := indexByName(links)
	for name, it := range p.ifaces {
		if idx, ok := present[name]; !ok || idx != it.index {
			p.gone(it, !ok)
		}
	}
	var todo []pending
	for _, l := range links {
		if p.wanted(l.Attrs().Name) {
			if it := p.prepare(l.Attrs()); it != nil {
				todo = append(todo, pending{it, l.Attrs()})
			}
		}
	}
	parallel(len(todo), func(i int) { p.attach(todo[i].it, todo[i].attrs) })
	p.warnUnmatched(links)
}

// indexByName maps each interface name in links to its ifindex.
func indexByName(links []netlink.Link) map[string]int {
	m := make(map[string]int, len(links))
	for _, l := range links {
		m[l.Attrs().Name] = l.Attrs().Index
	}
	return m
}

type pending struct {
	it    *iface
	attrs *netlink.LinkAttrs
}

// attachWorkers bounds how many interfaces are loaded and attached at
// once. Attaching mostly waits for the kernel (an RCU grace period per
// XDP program change), loading is CPU work: overlapping them is what
// makes starting on hundreds of interfaces fast.
const attachWorkers = 16

// parallel runs fn(0..n-1) on up to attachWorkers goroutines.
func parallel(n int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(n, attachWorkers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (p *XDPUDPPorts) wanted(name string) bool {
	return p.settings.include.match(name) && !p.settings.exclude.match(name)
}

// linkUpdate handles one link event. Called with p.mu held.
func (p *XDPUDPPorts) linkUpdate(u netlink.LinkUpdate) {
	a := u.Attrs()
	if u.Header.Type == unix.RTM_DELLINK {
		if it := p.ifaces[a.Name]; it != nil && it.index == a.Index {
			p.gone(it, true)
		}
		return
	}
	// A rename moves an ifindex away from the name it had.
	for _, it := range p.ifaces {
		if it.index == a.Index && it.name != a.Name {
			p.gone(it, true)
		}
	}
	if p.wanted(a.Name) {
		if it := p.prepare(a); it != nil {
			p.attach(it, a)
		}
	}
}

// gone releases the attachments of an interface that was deleted, renamed
// or re-created (absent: no interface has its name now); its counters
// stay. Called with p.mu held.
func (p *XDPUDPPorts) gone(it *iface, absent bool) {
	wasAttached := false
	for _, c := range it.dirs {
		if c.att != nil {
			wasAttached = true
			if err := c.att.Detach(); err != nil {
				p.Log.Debugf("detaching the %s program from %s: %v", c, it.name, err)
			}
			c.att = nil
		}
	}
	if absent && wasAttached {
		p.Log.Infof("interface %s is gone; its counters are kept for absent_interface_timeout (%s) and continue when it returns",
			it.name, p.settings.absentTimeout)
	}
	it.index = 0
	if absent && it.absent.IsZero() {
		it.absent = time.Now()
	}
}

// expireAbsent frees the counters (and pins) of interfaces absent for
// longer than absent_interface_timeout: on container hosts with random
// veth names they would otherwise only grow. Called with p.mu held.
func (p *XDPUDPPorts) expireAbsent(now time.Time) {
	for name, it := range p.ifaces {
		if it.absent.IsZero() || now.Sub(it.absent) < p.settings.absentTimeout {
			continue
		}
		p.Log.Infof("interface %s has been gone since %s (absent_interface_timeout = %s): freeing its counters; if it returns it starts from zero",
			name, it.absent.Format(time.RFC3339), p.settings.absentTimeout)
		p.forget(it)
	}
}

// forget frees an interface's counters and pins and drops it. Called
// with p.mu held.
func (p *XDPUDPPorts) forget(it *iface) {
	for _, c := range it.dirs {
		p.forgetCounters(it, c)
	}
	if p.settings.pinPath != "" {
		removeEmptyDir(filepath.Join(p.settings.pinPath, it.name))
	}
	delete(p.ifaces, it.name)
}

// prepare does the bookkeeping before attaching to a: the entry of its
// name, dropping attachments to an earlier interface of that name, and
// reserving kernel memory for new counters. It returns nil if every
// counting of a is attached or none can be. Called with p.mu held.
func (p *XDPUDPPorts) prepare(a *netlink.LinkAttrs) *iface {
	it := p.ifaces[a.Name]
	if it == nil {
		it = &iface{name: a.Name}
		for _, d := range p.settings.directions {
			it.dirs = append(it.dirs, &counting{dir: d})
		}
		p.ifaces[a.Name] = it
	}
	if it.index != a.Index {
		p.gone(it, false) // re-created: the old attachments are dead
	}
	it.index, it.absent = a.Index, time.Time{}
	frame, err := bpf.FrameOf(a.EncapType)
	if err != nil {
		// Refused up front, never counted wrong: reported once.
		p.report(it.dirs[0], fmt.Errorf("interface %s: not attached: %w", a.Name, err))
		return nil
	}
	todo := false
	for _, c := range it.dirs {
		if c.hook == bpf.HookNone {
			c.hook = p.plannedHook(c.dir)
		}
		if c.att != nil {
			continue
		}
		if c.counters != nil && c.counters.Layout().Frame != frame {
			// The name now belongs to another kind of link: the program
			// must read its frames from another start.
			p.Log.Infof("interface %s is now a %s link: its %s counters restart from zero", a.Name, a.EncapType, c)
			p.forgetCounters(it, c)
		}
		if c.counters == nil && c.memory == 0 {
			layout, err := p.loader.Layout(p.bpfConfig(frame))
			if err == nil {
				err = p.makeRoom(a.Name, c.dir, layout)
			}
			if err != nil {
				p.report(c, err)
				continue
			}
			c.memory = layout.KernelMemory()
		}
		todo = true
	}
	if !todo {
		return nil
	}
	return it
}

// plannedHook is the hook a counting in direction d will be attached at
// as far as the configuration tells before attaching ("auto" decides per
// interface then): the hook tag of a counting that never attached.
func (p *XDPUDPPorts) plannedHook(d bpf.Direction) bpf.Hook {
	if d == bpf.Ingress && p.settings.ingressHook == hookXDP {
		return p.settings.mode.Hook()
	}
	if p.loader.LegacyTC() {
		return bpf.HookTC
	}
	return bpf.HookTCX
}

// free closes a counting's counters and series state (not its pins).
func (c *counting) free(ifname string, log telegraf.Logger) {
	if c.counters != nil {
		if err := c.counters.Close(); err != nil {
			log.Warnf("freeing the %s maps of %s: %v", c, ifname, err)
		}
	}
	c.series.close()
	c.counters, c.memory, c.series = nil, 0, nil
}

// forgetCounters frees one counting's counters and its pins. Called with
// p.mu held.
func (p *XDPUDPPorts) forgetCounters(it *iface, c *counting) {
	p.release(it, c)
	c.free(it.name, p.Log)
	if p.settings.pinPath != "" {
		if err := bpf.RemovePins(p.pinDir(it.name, c.dir)); err != nil {
			p.Log.Warnf("removing the %s pins of %s: %v", c, it.name, err)
		}
	}
}

// attach loads (or adopts) the counters of every counting of it that is
// not attached and attaches them to a. It touches only it, so it may run
// for several interfaces at once, with p.mu held by the caller.
func (p *XDPUDPPorts) attach(it *iface, a *netlink.LinkAttrs) {
	frame, _ := bpf.FrameOf(a.EncapType) // checked by prepare
	for _, c := range it.dirs {
		if c.att != nil || c.memory == 0 && c.counters == nil {
			continue
		}
		if c.counters == nil {
			if done := p.open(it, c, a, frame); done {
				continue
			}
			if p.settings.pinPath != "" {
				// Replacing or dropping pinned state may have detached a
				// program: what a says of the hooks is out of date.
				if fresh, err := netlink.LinkByIndex(a.Index); err == nil && fresh.Attrs().Name == a.Name {
					a = fresh.Attrs()
				}
			}
		}
		p.attachCounting(it, c, a)
	}
}

// attachCounting attaches a counting's loaded counters at the hook its
// direction and the configuration call for.
func (p *XDPUDPPorts) attachCounting(it *iface, c *counting, a *netlink.LinkAttrs) {
	target, err := p.target(it, c, a, 0)
	if err != nil {
		p.report(c, err)
		return
	}
	att, err := c.counters.Attach(target)
	if err != nil && target.XDP && p.settings.ingressHook == hookAuto {
		// auto on an allow-listed driver: native XDP, else TC (never
		// generic XDP, which costs what TC does not).
		p.choose(it, c, fmt.Sprintf("native XDP failed (%v); using TC", err))
		target.XDP = false
		att, err = c.counters.Attach(target)
	}
	if err != nil {
		c.hook = hookOf(err, c.hook)
		p.report(c, attachError(it.name, err))
		return
	}
	p.attached(it, c, att)
	if p.settings.pinPath != "" {
		if err := att.Pin(p.pinDir(it.name, c.dir)); err != nil {
			p.acc.AddError(fmt.Errorf("interface %s: %s: %w; it will be detached when the plugin stops", it.name, c, err))
		}
	}
}

// attached records a new attachment and logs it.
func (p *XDPUDPPorts) attached(it *iface, c *counting, att *bpf.Attachment) {
	c.att, c.hook, c.lastErr = att, att.Hook, ""
	if att.NativeErr != nil {
		p.Log.Infof("native XDP is not available on %s (%v); using generic mode", it.name, att.NativeErr)
	}
	if att.Replaced != 0 {
		p.Log.Warnf("interface %s: replaced program id %d at %s %s, left attached by an earlier run that did not stop cleanly",
			it.name, att.Replaced, c, att.Hook)
	}
	p.Log.Infof("attached to %s (ifindex %d), %s at %s, %s program", it.name, it.index, c, att.Hook, att.Variant)
}

// hookOf is the hook an attach error names, else keep.
func hookOf(err error, keep bpf.Hook) bpf.Hook {
	var ae *bpf.AttachError
	if errors.As(err, &ae) {
		return ae.Hook
	}
	return keep
}

// report passes a per-interface error to Telegraf once: the same error is
// not repeated at every resync.
func (p *XDPUDPPorts) report(c *counting, err error) {
	if msg := err.Error(); msg != c.lastErr {
		c.lastErr = msg
		p.acc.AddError(err)
		return
	}
	p.Log.Debugf("still failing: %v", err)
}

// closeAll closes every attachment (detaching the program unless it is
// pinned) and frees the counters, several at once: detaching waits for
// the kernel, and a host may have hundreds of interfaces. Called with p.mu
// held.
func (p *XDPUDPPorts) closeAll() {
	var all []*counting
	var names []string
	for _, it := range p.ifaces {
		for _, c := range it.dirs {
			all = append(all, c)
			names = append(names, it.name)
		}
	}
	parallel(len(all), func(i int) {
		c := all[i]
		if err := c.att.Close(); err != nil {
			p.Log.Warnf("detaching the %s program from %s: %v", c, names[i], err)
		}
		c.free(names[i], p.Log)
	})
	p.ifaces = nil
}
