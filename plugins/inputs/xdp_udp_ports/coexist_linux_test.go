package xdp_udp_ports

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/influxdata/telegraf/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// TC verdicts.
const (
	tcActUnspec = -1 // TCX_NEXT: go on to the next program
	tcxPass     = 0  // TCX_PASS / TC_ACT_OK: accept, no further programs
)

// foreignTC loads a SCHED_CLS program that is not ours, returning verdict.
func foreignTC(t *testing.T, name string, verdict int32) *ebpf.Program {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: name, Type: ebpf.SchedCLS, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, verdict), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// addForeignFilter adds a foreign direct-action BPF filter (and the
// clsact qdisc) at ingress of dev, priority 1.
func addForeignFilter(t *testing.T, dev string, prog *ebpf.Program) {
	t.Helper()
	run(t, "tc", "qdisc", "add", "dev", dev, "clsact")
	l, err := netlink.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL},
		Fd:          prog.FD(), Name: "foreign", DirectAction: true,
	}
	if err := netlink.FilterAdd(f); err != nil {
		t.Fatal(err)
	}
}

// foreignPrograms lists what is attached to dev that is not ours.
func foreignPrograms(t *testing.T, p *testnet.Pair, dev string) []testnet.Program {
	t.Helper()
	all, err := testnet.Programs(p.Receiver, dev)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(pr testnet.Program) bool { return pr.Ours() })
}

// TestCoexistence: other tools' tcx programs and clsact filters present
// before Start are still attached, untouched, after Start, Gather and
// Stop; ours counted every packet and is gone after Stop.
func TestCoexistence(t *testing.T) {
	cases := []struct {
		name   string
		legacy bool
	}{
		// A foreign tcx program that ends the chain (TCX_PASS, Cilium's
		// usual verdict) and a foreign filter behind it: ours runs first.
		{name: "tcx"},
		// Legacy path: a foreign filter at priority 1 that lets packets
		// go on; ours takes the lowest free priority.
		{name: "legacy", legacy: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.legacy {
				t.Setenv("XDP_UDP_PORTS_LEGACY_TC", "1")
			}
			p := testnet.NewPair(t, testnet.Options{})
			if !p.RunInReceiver(t) {
				return
			}
			addForeignFilter(t, p.ReceiverIf, foreignTC(t, "foreign_filter", tcActUnspec))
			if !tc.legacy {
				l, err := link.AttachTCX(link.TCXOptions{Interface: p.ReceiverIndex, Program: foreignTC(t, "foreign_tcx", tcxPass), Attach: ebpf.AttachTCXIngress})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
			}
			before := foreignPrograms(t, p, p.ReceiverIf)
			t.Logf("foreign: %v", before)

			plugin := newPlugin(t, func(x *XDPUDPPorts) { x.IngressHook = "tc" }, p.ReceiverIf)
			acc := start(t, plugin)
			ours := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf)
			t.Logf("ours: %v", ours)
			if tc.legacy && (len(ours) != 1 || ours[0].Priority != 2 || ours[0].Filter != bpf.FilterName) {
				t.Errorf("our filter %v, want one named %q at priority 2 (the lowest free)", ours, bpf.FilterName)
			}
			tr := sample(p)
			p.MustSend(t, tr...)
			ports, _ := split(gatherSettled(t, plugin))
			testutil.RequireMetricsEqual(t, tr.portMetrics(p.ReceiverIf, roleDestination, nil), ports, testutil.IgnoreTime(), testutil.SortMetrics())
			requireNoErrors(t, acc)
			if now := foreignPrograms(t, p, p.ReceiverIf); !slices.Equal(now, before) {
				t.Errorf("foreign programs while running %v, want %v untouched", now, before)
			}
			plugin.Stop()
			testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
			if now := foreignPrograms(t, p, p.ReceiverIf); !slices.Equal(now, before) {
				t.Errorf("foreign programs after Stop %v, want %v untouched", now, before)
			}
		})
	}
}

// On the legacy path a clsact qdisc the plugin added goes with its
// filters; one that was there before stays (TestCoexistence).
func TestLegacyQdiscRemovedOnlyIfOurs(t *testing.T) {
	t.Setenv("XDP_UDP_PORTS_LEGACY_TC", "1")
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	plugin := newPlugin(t, func(x *XDPUDPPorts) { x.Directions = []string{"ingress", "egress"} }, p.ReceiverIf)
	start(t, plugin)
	testnet.WaitOurs(t, p.Receiver, p.ReceiverIf, time.Now(), 0, "tc/ingress", "tc/egress")
	plugin.Stop()
	out, err := testnet.Command(p.Receiver, "tc", "qdisc", "show", "dev", p.ReceiverIf).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "clsact") {
		t.Errorf("the clsact qdisc the plugin added is still there after Stop:\n%s", out)
	}
}

// A second live instance never removes or replaces the first one's
// filter: it reports the owner and leaves it.
func TestLegacySecondInstance(t *testing.T) {
	t.Setenv("XDP_UDP_PORTS_LEGACY_TC", "1")
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	first := newPlugin(t, nil, p.ReceiverIf)
	start(t, first)
	ours := testnet.WaitOurs(t, p.Receiver, p.ReceiverIf, time.Now(), 0, "tc/ingress")
	second := newPlugin(t, nil, p.ReceiverIf)
	acc := start(t, second)
	if len(errorsOf(acc)) != 1 || !strings.Contains(errorsOf(acc)[0].Error(), "another running xdp_udp_ports instance") {
		t.Fatalf("second instance: errors %v, want one naming the running instance", errorsOf(acc))
	}
	t.Logf("reported: %s", errorsOf(acc)[0])
	if now := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); !slices.Equal(now, ours) {
		t.Errorf("filters %v after the second instance started, want the first's %v", now, ours)
	}
	second.Stop()
	if now := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); !slices.Equal(now, ours) {
		t.Errorf("filters %v after the second instance stopped, want the first's %v", now, ours)
	}
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: 5, Payload: 8})
	if got := portPackets(gatherSettled(t, first), "53"); got != 5 {
		t.Errorf("first instance: port 53 %d packets, want 5", got)
	}
}

// On the legacy path a filter outlives a SIGKILLed owner; the next start
// finds its ownership lock free, replaces the stale filter (logged) and
// leaves exactly one filter of ours.
func TestLegacyKilledThenRestarted(t *testing.T) {
	t.Setenv("XDP_UDP_PORTS_LEGACY_TC", "1")
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	cmd := startHelper(t, helperConfig{Interface: p.ReceiverIf})
	stale := testnet.WaitOurs(t, p.Receiver, p.ReceiverIf, time.Now(), time.Second, "tc/ingress")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // "signal: killed"
	if now := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); !slices.Equal(now, stale) {
		t.Fatalf("after SIGKILL: %v, want the dead instance's filter %v left behind", now, stale)
	}
	log := &testutil.CaptureLogger{Name: "inputs.xdp_udp_ports"}
	next := newPlugin(t, func(x *XDPUDPPorts) { x.Log = log }, p.ReceiverIf)
	acc := start(t, next)
	requireNoErrors(t, acc)
	ours := testnet.WaitOurs(t, p.Receiver, p.ReceiverIf, time.Now(), 0, "tc/ingress")
	if ours[0].ID == stale[0].ID {
		t.Errorf("the stale filter %v is still attached", stale)
	}
	if !slices.ContainsFunc(log.Warnings(), func(w string) bool {
		return strings.Contains(w, fmt.Sprintf("replaced program id %d", stale[0].ID))
	}) {
		t.Errorf("no warning about replacing program %d: %v", stale[0].ID, log.Warnings())
	}
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: 6, Payload: 8})
	if got := portPackets(gatherSettled(t, next), "53"); got != 6 {
		t.Errorf("port 53: %d packets, want 6", got)
	}
	next.Stop()
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
}
