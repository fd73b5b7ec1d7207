//go:build linux

package xdp_udp_ports

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// iface is one interface name. Its counters live as long as the plugin
// runs (they continue when the interface is re-created); the attachment
// exists while the interface does and the program is attached.
type iface struct {
	name     string
	counters *bpf.Counters
	att      *bpf.Attachment // nil while not attached
	index    int             // ifindex att is attached to
	lastErr  string          // last error reported, reported again only when it changes
	memory   uint64          // kernel memory reserved for its counters (0: none)
	absent   time.Time       // when it was last seen gone (zero while present)
}

// linkEventBuffer is the netlink receive buffer for link events, large
// enough for hundreds of interfaces appearing at once.
const linkEventBuffer = 4 << 20

// watch follows link events and resyncs every resync_interval (events can
// be missed), until Stop.
func (p *XDPUDPPorts) watch() {
	defer p.wg.Done()
	ticker := time.NewTicker(p.settings.resync)
	defer ticker.Stop()
	var updates chan netlink.LinkUpdate
	var unsubscribe chan struct{}
	subscribe := func() {
		updates, unsubscribe = make(chan netlink.LinkUpdate, 256), make(chan struct{})
		err := netlink.LinkSubscribeWithOptions(updates, unsubscribe, netlink.LinkSubscribeOptions{
			ReceiveBufferSize: linkEventBuffer,
			ErrorCallback:     func(err error) { p.Log.Debugf("link events: %v", err) },
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

// resync attaches to every matching interface and retries failed ones.
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
	p.reconcile(links)
}

// reconcile makes the attachments match the interfaces in links.
// Called with p.mu held.
func (p *XDPUDPPorts) reconcile(links []netlink.Link) {
	present := make(map[string]int, len(links))
	for _, l := range links {
		present[l.Attrs().Name] = l.Attrs().Index
	}
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
		if it.att != nil && it.index == a.Index && it.name != a.Name {
			p.gone(it, true)
		}
	}
	if p.wanted(a.Name) {
		p.ensure(a)
	}
}

// gone detaches an interface that was deleted, renamed or re-created
// (absent: no interface has its name now); its counters stay. Called with
// p.mu held.
func (p *XDPUDPPorts) gone(it *iface, absent bool) {
	if it.att != nil {
		if err := it.att.Detach(); err != nil {
			p.Log.Debugf("detaching from %s: %v", it.name, err)
		}
		it.att = nil
		if absent {
			p.Log.Infof("interface %s is gone; its counters are kept and continue when it returns", it.name)
		}
	}
	it.index = 0
	if absent && it.absent.IsZero() {
		it.absent = time.Now()
	}
}

// ensure attaches to an interface unless already attached there. Errors
// are reported through the accumulator (once per distinct error) and
// retried at the next resync. Called with p.mu held.
func (p *XDPUDPPorts) ensure(a *netlink.LinkAttrs) {
	if it := p.prepare(a); it != nil {
		p.attach(it, a)
	}
}

// prepare does the bookkeeping before attaching to a: the entry of its
// name, dropping an attachment to an earlier interface of that name, and
// reserving kernel memory for new counters. It returns nil if a is
// already attached or cannot be. Called with p.mu held.
func (p *XDPUDPPorts) prepare(a *netlink.LinkAttrs) *iface {
	it := p.ifaces[a.Name]
	if it == nil {
		it = &iface{name: a.Name}
		p.ifaces[a.Name] = it
	}
	if it.att != nil && it.index == a.Index {
		return nil
	}
	p.gone(it, false) // re-created: the old attachment is dead
	it.absent = time.Time{}
	if it.counters == nil && it.memory == 0 {
		layout, err := p.loader.Layout(p.bpfConfig())
		if err == nil {
			err = p.makeRoom(a.Name, layout)
		}
		if err != nil {
			p.report(it, err)
			return nil
		}
		it.memory = layout.KernelMemory()
	}
	return it
}

// attach loads (or adopts) the counters of it if needed and attaches them
// to a. It touches only it, so it may run for several interfaces at once,
// with p.mu held by the caller.
func (p *XDPUDPPorts) attach(it *iface, a *netlink.LinkAttrs) {
	if it.counters == nil {
		c, adopted, err := p.open(a.Name, a.Index)
		if err != nil {
			it.memory = 0
			p.report(it, err)
			return
		}
		it.counters = c
		if p.adopt(it, adopted, a) {
			return
		}
		// Replacing or dropping pinned state may have detached a program.
		if fresh, err := netlink.LinkByIndex(a.Index); err == nil && fresh.Attrs().Name == a.Name {
			a = fresh.Attrs()
		}
	}
	if x := a.Xdp; x != nil && x.Attached && x.ProgId != 0 {
		name := programName(x.ProgId)
		replaced, err := p.loader.ReplaceStale(a.Index, ebpf.ProgramID(x.ProgId), name)
		if !replaced || err != nil {
			p.report(it, foreignProgram(a.Name, x.ProgId, name, err))
			return
		}
		p.Log.Warnf("interface %s: replaced program id %d, left attached by an earlier run that did not stop cleanly", a.Name, x.ProgId)
	}
	att, err := it.counters.Attach(a.Index, p.settings.mode)
	if err != nil {
		p.report(it, attachError(a.Name, err))
		return
	}
	it.att, it.index, it.lastErr = att, a.Index, ""
	if att.NativeErr != nil {
		p.Log.Infof("native XDP is not available on %s (%v); using generic mode", a.Name, att.NativeErr)
	}
	p.Log.Infof("attached to %s (ifindex %d) in %s mode, %s program", a.Name, a.Index, att.Mode, att.Variant)
	if p.settings.pinPath != "" {
		if err := att.Pin(p.pinDir(a.Name)); err != nil {
			p.acc.AddError(fmt.Errorf("interface %s: %w; it will be detached when the plugin stops", a.Name, err))
		}
	}
}

// report passes a per-interface error to Telegraf once: the same error is
// not repeated at every resync.
func (p *XDPUDPPorts) report(it *iface, err error) {
	if msg := err.Error(); msg != it.lastErr {
		it.lastErr = msg
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
	its := make([]*iface, 0, len(p.ifaces))
	for _, it := range p.ifaces {
		its = append(its, it)
	}
	parallel(len(its), func(i int) {
		it := its[i]
		if err := it.att.Close(); err != nil {
			p.Log.Warnf("detaching from %s: %v", it.name, err)
		}
		if it.counters == nil {
			return
		}
		if err := it.counters.Close(); err != nil {
			p.Log.Warnf("freeing the maps of %s: %v", it.name, err)
		}
	})
	p.ifaces = nil
}

// programName returns an XDP program's name, "" if it cannot be read
// (that needs CAP_SYS_ADMIN).
func programName(id uint32) string {
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return ""
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// foreignProgram describes another XDP program found on an interface.
func foreignProgram(ifname string, id uint32, name string, replaceErr error) error {
	what := fmt.Sprintf("id %d", id)
	if name != "" {
		what = fmt.Sprintf("id %d, name %q", id, name)
	}
	if replaceErr != nil {
		return fmt.Errorf("interface %s: cannot replace the XDP program (%s) an earlier run left attached: %w", ifname, what, replaceErr)
	}
	msg := fmt.Sprintf("interface %s: another XDP program (%s) is attached; xdp_udp_ports never replaces or detaches it (it will retry at every resync)", ifname, what)
	if bpf.OwnProgramName(name) {
		msg += "; it looks like xdp_udp_ports run by another process, or left pinned by a run with pin_path (xdp_udp_ports unpin removes it)"
	}
	return errors.New(msg)
}
