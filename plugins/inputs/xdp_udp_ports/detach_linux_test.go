package xdp_udp_ports

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// loss is one way an attachment is lost from outside the plugin.
type loss struct {
	name  string
	env   map[string]string // forces a kernel path
	hook  string            // ingress_hook
	ours  string            // where our program is: a testnet.Program hook
	lose  func(*testing.T, *testnet.Pair, testnet.Program) (cleanup func())
	taken bool // something else takes the hook until cleanup
}

// attachForeignXDP attaches, in native mode through a bpf_link, an
// XDP_PASS program that is not ours to the receiver's veth end, for the
// rest of the test, and returns its id.
func attachForeignXDP(t *testing.T, p *testnet.Pair) uint32 {
	t.Helper()
	l, err := link.AttachXDP(link.XDPOptions{Program: foreignPass(t), Interface: p.ReceiverIndex, Flags: link.XDPDriverMode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	id, err := testnet.XDPProgID(p.Receiver, p.ReceiverIf)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// foreignPass loads an XDP_PASS program that is not ours.
func foreignPass(t *testing.T) *ebpf.Program {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "foreign_pass", Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

var losses = []loss{
	{
		name: "xdp-link-detached", hook: "xdp", ours: "xdp",
		lose: func(t *testing.T, p *testnet.Pair, ours testnet.Program) func() {
			if err := testnet.DetachLinkOf(ours.ID); err != nil {
				t.Fatal(err)
			}
			return nil
		},
	},
	{
		name: "xdp-link-detached-other-program-takes-over", hook: "xdp", ours: "xdp", taken: true,
		lose: func(t *testing.T, p *testnet.Pair, ours testnet.Program) func() {
			if err := testnet.DetachLinkOf(ours.ID); err != nil {
				t.Fatal(err)
			}
			l, err := netlink.LinkByName(p.ReceiverIf)
			if err != nil {
				t.Fatal(err)
			}
			if err := netlink.LinkSetXdpFdWithFlags(l, foreignPass(t).FD(), unix.XDP_FLAGS_DRV_MODE); err != nil {
				t.Fatal(err)
			}
			return func() { run(t, "ip", "link", "set", "dev", p.ReceiverIf, "xdpdrv", "off") }
		},
	},
	{
		name: "netlink-xdp-replaced", hook: "xdp", ours: "xdp", taken: true,
		env: map[string]string{"XDP_UDP_PORTS_NETLINK_ATTACH": "1"},
		lose: func(t *testing.T, p *testnet.Pair, ours testnet.Program) func() {
			l, err := netlink.LinkByName(p.ReceiverIf)
			if err != nil {
				t.Fatal(err)
			}
			// Replacing (no UPDATE_IF_NOEXIST), as `ip link set xdp -force` does.
			if err := netlink.LinkSetXdpFdWithFlags(l, foreignPass(t).FD(), unix.XDP_FLAGS_DRV_MODE); err != nil {
				t.Fatal(err)
			}
			return func() { run(t, "ip", "link", "set", "dev", p.ReceiverIf, "xdpdrv", "off") }
		},
	},
	{
		name: "tcx-link-detached", hook: "tc", ours: "tcx/ingress",
		lose: func(t *testing.T, p *testnet.Pair, ours testnet.Program) func() {
			if err := testnet.DetachLinkOf(ours.ID); err != nil {
				t.Fatal(err)
			}
			return nil
		},
	},
	{
		name: "tc-filter-deleted", hook: "tc", ours: "tc/ingress",
		env: map[string]string{"XDP_UDP_PORTS_LEGACY_TC": "1"},
		lose: func(t *testing.T, p *testnet.Pair, ours testnet.Program) func() {
			run(t, "tc", "filter", "del", "dev", p.ReceiverIf, "ingress", "pref", strconv.Itoa(int(ours.Priority)))
			return nil
		},
	},
	{
		name: "clsact-qdisc-deleted", hook: "tc", ours: "tc/ingress",
		env: map[string]string{"XDP_UDP_PORTS_LEGACY_TC": "1"},
		lose: func(t *testing.T, p *testnet.Pair, ours testnet.Program) func() {
			run(t, "tc", "qdisc", "del", "dev", p.ReceiverIf, "clsact")
			return nil
		},
	},
}

// summaryOf returns the one ingress summary in ms.
func summaryOf(t *testing.T, ms []telegraf.Metric) telegraf.Metric {
	t.Helper()
	_, summaries := split(ms)
	if len(summaries) != 1 {
		t.Fatalf("%d summaries, want 1: %v", len(summaries), ms)
	}
	return summaries[0]
}

func gatherOnce(t *testing.T, p *XDPUDPPorts) []telegraf.Metric {
	t.Helper()
	acc := &testutil.Accumulator{}
	if err := p.Gather(acc); err != nil {
		t.Fatal(err)
	}
	return acc.GetTelegrafMetrics()
}

// TestLostAttachment: an attachment detached from outside is noticed at
// the next resync, reported naming the interface, the hook and what took
// its place; while the interface is not attached its per-port series
// pause and its summary says attached = 0; once the hook is free it is
// attached again and the counts go on from where they were.
func TestLostAttachment(t *testing.T) {
	for _, l := range losses {
		t.Run(l.name, func(t *testing.T) {
			for k, v := range l.env {
				t.Setenv(k, v)
			}
			p := testnet.NewPair(t, testnet.Options{})
			if !p.RunInReceiver(t) {
				return
			}
			plugin := newPlugin(t, func(x *XDPUDPPorts) {
				x.IngressHook = l.hook
				x.ResyncInterval = config.Duration(minResyncInterval)
			}, p.ReceiverIf)
			acc := start(t, plugin)
			send := func(n int) { p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: n, Payload: 8}) }
			send(10)
			if got := portPackets(gatherSettled(t, plugin), "53"); got != 10 {
				t.Fatalf("port 53: %d packets, want 10", got)
			}
			ours := testnet.WaitOurs(t, p.Receiver, p.ReceiverIf, time.Now(), 0, l.ours)[0]

			cleanup := l.lose(t, p, ours)
			deadline := time.Now().Add(5 * time.Second)
			for len(errorsOf(acc)) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("losing the attachment was not reported")
				}
				time.Sleep(20 * time.Millisecond)
			}
			msg := errorsOf(acc)[0].Error()
			t.Logf("reported: %s", msg)
			for _, want := range []string{p.ReceiverIf, "ingress", "detached from outside", "attached = 0"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if l.taken {
				if !strings.Contains(msg, `"foreign_pass"`) {
					t.Errorf("error %q does not name the program that took the hook", msg)
				}
				ms := gatherOnce(t, plugin)
				if got := summaryOf(t, ms).Fields()["attached"]; got != int64(0) {
					t.Errorf("attached = %v while the hook is taken, want 0", got)
				}
				if ports, _ := split(ms); len(ports) != 0 {
					t.Errorf("per-port series while not attached: %v", ports)
				}
				cleanup()
			}
			testnet.WaitOurs(t, p.Receiver, p.ReceiverIf, time.Now(), 3*time.Second, l.ours)
			send(7)
			ms := gatherSettled(t, plugin)
			if got := portPackets(ms, "53"); got != 17 {
				t.Errorf("port 53 after re-attaching: %d packets, want 17 (10 + 7: counters continue)", got)
			}
			if got := summaryOf(t, ms).Fields()["attached"]; got != int64(1) {
				t.Errorf("attached = %v after re-attaching, want 1", got)
			}
			plugin.Stop()
			testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
		})
	}
}
