package bpf

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The TC program is attached with tcx (Linux 6.6+): a bpf_link at the head
// of the hook's programs, so that a program after it that ends the chain
// (TCX_PASS, Cilium's usual verdict) cannot hide packets from it. It
// returns TCX_NEXT (TC_ACT_UNSPEC): the verdict stays the others'.
//
// Without tcx it is a legacy clsact direct-action filter at the lowest
// free priority. That path never deletes or replaces anyone else's qdisc
// or filter: it adds a clsact qdisc only where there is none, removes only
// its own filter, and the qdisc only if this process created it and no
// filter is left on it. A filter outlives its process; an ownership lock
// tells a dead owner's filter (removed at the next start) from a live one's
// (never touched).

// forceLegacyTCEnv makes the loader use clsact filters even where tcx
// works, to test that path.
const forceLegacyTCEnv = "XDP_UDP_PORTS_LEGACY_TC"

func forceLegacyTC() bool { return os.Getenv(forceLegacyTCEnv) == "1" }

// LegacyTC reports whether TC programs are attached as clsact filters
// (forced by XDP_UDP_PORTS_LEGACY_TC=1; otherwise only where tcx is not
// available, found out at attach time).
func (l *Loader) LegacyTC() bool { return l.legacyTC }

// FilterName is the name of our clsact filters (tc filter show).
const FilterName = "xdp_udp_ports"

var tcxAttachTypes = map[Direction]ebpf.AttachType{Ingress: ebpf.AttachTCXIngress, Egress: ebpf.AttachTCXEgress}

var filterParents = map[Direction]uint32{Ingress: netlink.HANDLE_MIN_INGRESS, Egress: netlink.HANDLE_MIN_EGRESS}

func (c *Counters) attachTC(t Target) (*Attachment, error) {
	prog, err := c.Program(TC)
	if err != nil {
		return nil, &AttachError{Hook: HookTCX, Dir: t.Dir, Variant: TC, Err: err}
	}
	a := &Attachment{Dir: t.Dir, Ifindex: t.Ifindex, Variant: TC}
	if !c.loader.legacyTC {
		l, err := link.AttachTCX(link.TCXOptions{
			Interface: t.Ifindex, Program: prog, Attach: tcxAttachTypes[t.Dir], Anchor: link.Head(),
		})
		if err == nil {
			a.Hook, a.impl = HookTCX, &bpfLink{link: l}
			return a, nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return nil, &AttachError{Hook: HookTCX, Dir: t.Dir, Variant: TC, Err: err}
		}
	}
	a.Hook = HookTC
	f, replaced, err := c.loader.qdiscs.attachFilter(prog, t.Ifindex, t.Dir)
	if err != nil {
		return nil, &AttachError{Hook: HookTC, Dir: t.Dir, Variant: TC, Err: err}
	}
	a.impl, a.Replaced = f, replaced
	return a, nil
}

// tcxPrograms lists the programs attached with tcx at dir of ifindex.
func tcxPrograms(ifindex int, dir Direction) []ebpf.ProgramID {
	res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: tcxAttachTypes[dir]})
	if err != nil {
		return nil
	}
	ids := make([]ebpf.ProgramID, len(res.Programs))
	for i, p := range res.Programs {
		ids[i] = p.ID
	}
	return ids
}

// filterPrograms lists the programs of the BPF filters at dir of ifindex.
func filterPrograms(ifindex int, dir Direction) []ebpf.ProgramID {
	filters, err := bpfFilters(ifindex, dir)
	if err != nil {
		return nil
	}
	ids := make([]ebpf.ProgramID, 0, len(filters))
	for _, f := range filters {
		ids = append(ids, ebpf.ProgramID(f.Id))
	}
	return ids
}

// bpfFilters lists the BPF filters at dir of ifindex (none without a
// clsact qdisc).
func bpfFilters(ifindex int, dir Direction) ([]*netlink.BpfFilter, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, err
	}
	all, err := netlink.FilterList(l, filterParents[dir])
	if err != nil {
		return nil, err
	}
	var out []*netlink.BpfFilter
	for _, f := range all {
		if b, ok := f.(*netlink.BpfFilter); ok {
			out = append(out, b)
		}
	}
	return out, nil
}

// qdiscs remembers the clsact qdiscs this process created, by interface,
// so that it removes one only if it created it (and nothing is left on
// it). One per Loader; safe for concurrent use.
type qdiscs struct {
	mu      sync.Mutex
	created map[int]bool // by ifindex
}

func newQdiscs() *qdiscs { return &qdiscs{created: map[int]bool{}} }

// ensureClsact adds a clsact qdisc to l unless there is one. An ingress
// qdisc (which holds the same handle) serves ingress filters only.
func (q *qdiscs) ensureClsact(l netlink.Link, dir Direction) error {
	list, err := netlink.QdiscList(l)
	if err != nil {
		return fmt.Errorf("listing qdiscs: %w", err)
	}
	for _, qd := range list {
		switch qd.Type() {
		case "clsact":
			return nil
		case "ingress":
			if dir == Ingress {
				return nil
			}
			return errors.New("an ingress qdisc is installed (it holds clsact's handle ffff:); egress filters need a clsact qdisc, and xdp_udp_ports never replaces another qdisc")
		}
	}
	qd := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT,
	}}
	if err := netlink.QdiscAdd(qd); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil // added meanwhile by someone else: use it, it is not ours
		}
		return fmt.Errorf("adding a clsact qdisc: %w", err)
	}
	q.created[l.Attrs().Index] = true
	return nil
}

// maxFilterPriority bounds the search for a free priority.
const maxFilterPriority = 0xffff

// attachFilter adds prog as a direct-action filter at the lowest free
// priority of dir of ifindex, after taking the filter's ownership lock
// and removing filters of ours that a dead instance left there.
func (q *qdiscs) attachFilter(prog *ebpf.Program, ifindex int, dir Direction) (*tcFilter, ebpf.ProgramID, error) {
	l, h, err := hold(prog, ifindex, "tc-"+dir.String(), "the tc "+dir.String()+" filter on %s")
	if err != nil {
		return nil, 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	f, replaced, err := q.addFilter(l, h, dir)
	if err != nil {
		h.lock.release()
		return nil, 0, err
	}
	return f, replaced, nil
}

// addFilter does attachFilter's work with q.mu held.
func (q *qdiscs) addFilter(l netlink.Link, h held, dir Direction) (*tcFilter, ebpf.ProgramID, error) {
	ifindex := l.Attrs().Index
	if err := q.ensureClsact(l, dir); err != nil {
		return nil, 0, err
	}
	filters, err := bpfFilters(ifindex, dir)
	if err != nil {
		return nil, 0, fmt.Errorf("listing %s filters: %w", dir, err)
	}
	var replaced ebpf.ProgramID
	used := map[uint16]bool{}
	for _, f := range filters {
		if f.Name == FilterName {
			// Ours, and we hold its lock: its owner is dead.
			if err := netlink.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) {
				return nil, 0, fmt.Errorf("removing filter prio %d left by an instance that died: %w", f.Priority, err)
			}
			replaced = ebpf.ProgramID(f.Id)
			continue
		}
		used[f.Priority] = true
	}
	for prio := uint16(1); prio < maxFilterPriority; prio++ {
		if used[prio] {
			continue
		}
		f := &tcFilter{held: h, ifindex: ifindex, dir: dir, prio: prio, q: q}
		err := netlink.FilterAdd(f.filter(h.program.FD()))
		if errors.Is(err, unix.EEXIST) {
			continue // taken meanwhile, or by a non-BPF filter (not listed as such)
		}
		if err != nil {
			q.dropIfUnused(ifindex)
			return nil, 0, fmt.Errorf("adding a %s filter at priority %d: %w", dir, prio, err)
		}
		return f, replaced, nil
	}
	return nil, 0, fmt.Errorf("no free filter priority at %s", dir)
}

// dropIfUnused deletes the clsact qdisc of ifindex if this process
// created it and no filter is left at either direction. Called with q.mu
// held.
func (q *qdiscs) dropIfUnused(ifindex int) {
	if !q.created[ifindex] {
		return
	}
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		delete(q.created, ifindex) // the interface is gone, and its qdisc
		return
	}
	for _, parent := range filterParents {
		if fs, err := netlink.FilterList(l, parent); err != nil || len(fs) > 0 {
			return
		}
	}
	qd := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if err := netlink.QdiscDel(qd); err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
		delete(q.created, ifindex)
	}
}

// tcFilter is a program attached as a legacy clsact filter.
type tcFilter struct {
	held
	ifindex int
	dir     Direction
	prio    uint16
	q       *qdiscs
}

// filterHandle is our filter's handle within its priority.
const filterHandle = 1

func (f *tcFilter) filter(fd int) *netlink.BpfFilter {
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: f.ifindex, Parent: filterParents[f.dir], Handle: filterHandle,
			Priority: f.prio, Protocol: unix.ETH_P_ALL,
		},
		Fd: fd, Name: FilterName, DirectAction: true,
	}
}

// present reports whether our filter is still at its priority.
func (f *tcFilter) present() bool {
	filters, err := bpfFilters(f.ifindex, f.dir)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(filters, func(b *netlink.BpfFilter) bool {
		return b.Priority == f.prio && ebpf.ProgramID(b.Id) == f.prog
	})
}

func (f *tcFilter) check(a *Attachment) error {
	if f.present() {
		return nil
	}
	return &DetachedError{Hook: a.Hook, Dir: a.Dir, Prog: f.prog, Now: occupants(a)}
}

func (f *tcFilter) release() error { return f.held.release(f.remove) }
func (f *tcFilter) detach() error  { return f.held.detach(f.remove) }

// remove deletes our filter if it is still there, then the qdisc if we
// created it and it is unused.
func (f *tcFilter) remove() error {
	f.q.mu.Lock()
	defer f.q.mu.Unlock()
	var err error
	if f.present() {
		err = netlink.FilterDel(f.filter(0))
		if errors.Is(err, unix.ENOENT) {
			err = nil
		}
	}
	f.q.dropIfUnused(f.ifindex)
	return err
}

// adoptFilter finds the filter running program id at dir of ifindex (left
// by a pinned run) and takes its ownership lock.
func (q *qdiscs) adoptFilter(id ebpf.ProgramID, ifindex int, dir Direction) (*tcFilter, error) {
	filters, err := bpfFilters(ifindex, dir)
	if err != nil {
		return nil, err
	}
	for _, b := range filters {
		if ebpf.ProgramID(b.Id) != id {
			continue
		}
		lock, err := lockOwner(ifindex, "tc-"+dir.String(), fmt.Sprintf("the tc %s filter on ifindex %d", dir, ifindex))
		if err != nil {
			return nil, err
		}
		return &tcFilter{held: held{prog: id, lock: lock}, ifindex: ifindex, dir: dir, prio: b.Priority, q: q}, nil
	}
	return nil, nil
}

// removeFiltersEverywhere deletes the filters running program id on every
// interface of the calling thread's network namespace.
func removeFiltersEverywhere(id ebpf.ProgramID) error {
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		for dir := range filterParents {
			filters, err := bpfFilters(l.Attrs().Index, dir)
			if err != nil {
				continue
			}
			for _, b := range filters {
				if ebpf.ProgramID(b.Id) == id {
					if err := netlink.FilterDel(b); err != nil && !errors.Is(err, unix.ENOENT) {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}
