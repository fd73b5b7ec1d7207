//go:build linux

package bench

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/influxdata/telegraf/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	plugin "github.com/xdp-udp-ports/xdp_udp_ports/plugins/inputs/xdp_udp_ports"
)

// legacyTCEnv makes the plugin's loader attach TC programs as clsact
// filters even where tcx works (bpf's test switch, read at Start).
const legacyTCEnv = "XDP_UDP_PORTS_LEGACY_TC"

// startStopHook is one way the plugin attaches on a veth, next to the
// least any tool does at that hook.
type startStopHook struct {
	Name  string
	set   func(*plugin.XDPUDPPorts)
	env   string   // set to "1" around Start
	hooks []string // where each interface must carry a program then
	bare  func(ns string, ifaces []string) (up, down float64, err error)
}

// startStopHooks are the hooks of part 4: the default on a veth (tcx),
// native XDP, and legacy clsact filters (kernels without tcx).
var startStopHooks = []startStopHook{
	{Name: "tcx (default)", hooks: []string{hookTCXIngress}, bare: startStopBareTCX},
	{Name: `XDP native (ingress_hook = "xdp", xdp_mode = "native")`, hooks: []string{hookXDP}, bare: startStopBareXDP,
		set: func(p *plugin.XDPUDPPorts) { p.IngressHook, p.XDPMode = "xdp", "native" }},
	{Name: "legacy tc filter (" + legacyTCEnv + "=1)", env: legacyTCEnv, hooks: []string{hookTCIngress}, bare: startStopBareFilter},
}

// StartStopCase is Start and Stop of the plugin on N interfaces at one
// hook, next to the least any tool does there: load one bare program,
// attach it to the N interfaces, detach and free it.
type StartStopCase struct {
	Hook                          string
	N                             int
	Start, Stop, BareUp, BareDown Sample // ns
}

// RunStartStop times the plugin's Start and Stop at each hook on each
// size of a set of new veths of pair p (this process must be in the
// receiver namespace), reps times, interleaved with the bare baseline of
// the hook. Every interface must be attached at the hook after Start and
// carry nothing after Stop.
func RunStartStop(t testing.TB, p *testnet.Pair, sizes []int, reps int) ([]StartStopCase, error) {
	ns := p.Receiver
	all := p.AddVeths(t, "xss", "xsr", slices.Max(sizes))
	out := make([]StartStopCase, len(sizes)*len(startStopHooks))
	for range reps {
		for i, n := range sizes {
			for j, h := range startStopHooks {
				c := &out[i*len(startStopHooks)+j]
				c.Hook, c.N = h.Name, n
				ifaces := all[:n]
				up, down, err := startStopPlugin(ns, ifaces, h)
				if err != nil {
					return nil, fmt.Errorf("%s, %d interfaces: %w", h.Name, n, err)
				}
				c.Start = append(c.Start, up)
				c.Stop = append(c.Stop, down)
				up, down, err = h.bare(ns, ifaces)
				if err != nil {
					return nil, fmt.Errorf("bare, %s, %d interfaces: %w", h.Name, n, err)
				}
				c.BareUp = append(c.BareUp, up)
				c.BareDown = append(c.BareDown, down)
			}
		}
	}
	return out, nil
}

func startStopPlugin(ns string, ifaces []string, h startStopHook) (up, down float64, err error) {
	var set []func(*plugin.XDPUDPPorts)
	if h.set != nil {
		set = append(set, h.set)
	}
	p, err := newPlugin(ifaces, set...)
	if err != nil {
		return 0, 0, err
	}
	if h.env != "" {
		if err := os.Setenv(h.env, "1"); err != nil {
			return 0, 0, err
		}
		defer os.Unsetenv(h.env)
	}
	acc := &testutil.Accumulator{}
	start := time.Now()
	err = p.Start(acc)
	up = nanos(time.Since(start))
	if err != nil {
		return 0, 0, err
	}
	if err := errors.Join(acc.FirstError(), checkHooks(ns, ifaces, h.hooks...)); err != nil {
		p.Stop()
		return 0, 0, err
	}
	start = time.Now()
	p.Stop()
	down = nanos(time.Since(start))
	return up, down, checkHooks(ns, ifaces)
}

// startStopBare loads prog with load, attaches it to every interface
// with attach (which returns how to detach) and times both halves.
func startStopBare(ns string, ifaces []string, load func() (*ebpf.Program, error),
	attach func(prog *ebpf.Program, l netlink.Link) (func() error, error)) (up, down float64, err error) {
	start := time.Now()
	prog, err := load()
	if err != nil {
		return 0, 0, err
	}
	detach := make([]func() error, 0, len(ifaces))
	closeAll := func() error {
		var errs []error
		for _, d := range detach {
			errs = append(errs, d())
		}
		return errors.Join(append(errs, prog.Close())...)
	}
	for _, name := range ifaces {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return 0, 0, errors.Join(err, closeAll())
		}
		d, err := attach(prog, l)
		if err != nil {
			return 0, 0, errors.Join(fmt.Errorf("attaching the bare program to %s: %w", name, err), closeAll())
		}
		detach = append(detach, d)
	}
	up = nanos(time.Since(start))
	start = time.Now()
	err = closeAll()
	down = nanos(time.Since(start))
	if err != nil {
		return 0, 0, err
	}
	return up, down, checkHooks(ns, ifaces)
}

func startStopBareXDP(ns string, ifaces []string) (up, down float64, err error) {
	return startStopBare(ns, ifaces, func() (*ebpf.Program, error) { return bareProgram(0) },
		func(prog *ebpf.Program, l netlink.Link) (func() error, error) {
			x, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: l.Attrs().Index, Flags: link.XDPDriverMode})
			if err != nil {
				return nil, err
			}
			return x.Close, nil
		})
}

func startStopBareTCX(ns string, ifaces []string) (up, down float64, err error) {
	return startStopBare(ns, ifaces, bareTCProgram,
		func(prog *ebpf.Program, l netlink.Link) (func() error, error) {
			x, err := link.AttachTCX(link.TCXOptions{Interface: l.Attrs().Index, Program: prog, Attach: ebpf.AttachTCXIngress, Anchor: link.Head()})
			if err != nil {
				return nil, err
			}
			return x.Close, nil
		})
}

// startStopBareFilter adds a clsact qdisc and one direct-action filter
// per interface, and removes both again.
func startStopBareFilter(ns string, ifaces []string) (up, down float64, err error) {
	return startStopBare(ns, ifaces, bareTCProgram,
		func(prog *ebpf.Program, l netlink.Link) (func() error, error) {
			qd := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{
				LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT,
			}}
			if err := netlink.QdiscAdd(qd); err != nil {
				return nil, fmt.Errorf("adding a clsact qdisc: %w", err)
			}
			f := &netlink.BpfFilter{
				FilterAttrs: netlink.FilterAttrs{
					LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL,
				},
				Fd: prog.FD(), Name: "bench_bare_tc", DirectAction: true,
			}
			if err := netlink.FilterAdd(f); err != nil {
				return nil, errors.Join(fmt.Errorf("adding a filter: %w", err), netlink.QdiscDel(qd))
			}
			return func() error { return errors.Join(netlink.FilterDel(f), netlink.QdiscDel(qd)) }, nil
		})
}
