//go:build linux

package testnet

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// Program is a BPF program found at a hook of an interface.
type Program struct {
	Hook string // "xdp", "tcx/ingress", "tcx/egress", "tc/ingress", "tc/egress"
	ID   uint32
	Name string // the program's name
	// Filter is the clsact filter's name and priority (tc hooks only).
	Filter   string
	Priority uint16
}

func (p Program) String() string {
	s := fmt.Sprintf("%s id %d %q", p.Hook, p.ID, p.Name)
	if p.Filter != "" || p.Priority != 0 {
		s += fmt.Sprintf(" (filter %q prio %d)", p.Filter, p.Priority)
	}
	return s
}

// ourNames are the names of the project's programs.
var ourNames = []string{"xdp_udp_ports", "xdp_udp_frags", "tc_udp_ports"}

// Ours reports whether p is one of the project's programs.
func (p Program) Ours() bool { return slices.Contains(ourNames, p.Name) }

// Programs lists every BPF program attached to dev in namespace ns: XDP,
// tcx (both directions) and clsact filters (both directions), in that
// order.
func Programs(ns, dev string) ([]Program, error) {
	h, err := handle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("%s in netns %s: %w", dev, ns, err)
	}
	var out []Program
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		out = append(out, Program{Hook: "xdp", ID: x.ProgId})
	}
	err = Do(ns, func() error {
		for _, d := range []struct {
			name string
			at   ebpf.AttachType
		}{{"ingress", ebpf.AttachTCXIngress}, {"egress", ebpf.AttachTCXEgress}} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: d.at})
			if err != nil {
				return fmt.Errorf("tcx %s of %s: %w", d.name, dev, err)
			}
			for _, p := range res.Programs {
				out = append(out, Program{Hook: "tcx/" + d.name, ID: uint32(p.ID)})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name   string
		parent uint32
	}{{"ingress", netlink.HANDLE_MIN_INGRESS}, {"egress", netlink.HANDLE_MIN_EGRESS}} {
		filters, err := h.FilterList(l, d.parent)
		if err != nil {
			return nil, fmt.Errorf("tc %s filters of %s: %w", d.name, dev, err)
		}
		for _, f := range filters {
			if b, ok := f.(*netlink.BpfFilter); ok {
				out = append(out, Program{Hook: "tc/" + d.name, ID: uint32(b.Id), Filter: b.Name, Priority: b.Priority})
			}
		}
	}
	for i := range out {
		out[i].Name = progName(out[i].ID)
	}
	return out, nil
}

func progName(id uint32) string {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// OurPrograms lists the project's programs attached to dev in ns.
func OurPrograms(t testing.TB, ns, dev string) []Program {
	t.Helper()
	all, err := Programs(ns, dev)
	if err != nil {
		t.Fatal(err)
	}
	var ours []Program
	for _, p := range all {
		if p.Ours() {
			ours = append(ours, p)
		}
	}
	return ours
}

// RequireNoneOurs fails the test if any of the project's programs is
// attached to dev in ns, at any hook.
func RequireNoneOurs(t testing.TB, ns, dev string) {
	t.Helper()
	if ours := OurPrograms(t, ns, dev); len(ours) > 0 {
		t.Fatalf("%s in netns %s still has our programs attached: %v", dev, ns, ours)
	}
}

// WaitOurs waits until exactly the hooks want (e.g. "tcx/ingress") carry
// one program of ours each on dev in ns, for at most within after since.
func WaitOurs(t testing.TB, ns, dev string, since time.Time, within time.Duration, want ...string) []Program {
	t.Helper()
	slices.Sort(want)
	for {
		ours := OurPrograms(t, ns, dev)
		hooks := make([]string, len(ours))
		for i, p := range ours {
			hooks[i] = p.Hook
		}
		slices.Sort(hooks)
		if slices.Equal(hooks, want) {
			return ours
		}
		if time.Since(since) > within {
			t.Fatalf("%s in netns %s: our programs at %s after %s, want at %s", dev, ns, strings.Join(hooks, ", "), within, strings.Join(want, ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// DetachLinkOf detaches, from outside, the bpf_link that attaches program
// id (as `bpftool link detach` does): the link stays open in its owner but
// no longer attaches anything.
func DetachLinkOf(id uint32) error {
	var it link.Iterator
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || uint32(info.Program) != id {
			continue
		}
		return it.Link.Detach()
	}
	if err := it.Err(); err != nil {
		return err
	}
	return fmt.Errorf("no bpf_link attaches program %d", id)
}
