package xdp_udp_ports

import (
	"net"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/testutil"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// byDirection splits metrics by their direction tag.
func byDirection(ms []telegraf.Metric, dir string) (ports, summaries []telegraf.Metric) {
	var mine []telegraf.Metric
	for _, m := range ms {
		if d, _ := m.GetTag("direction"); d == dir {
			mine = append(mine, m)
		}
	}
	return split(mine)
}

// replies is traffic from the receiver (where the plugin runs) back to
// the sender: IPv4 and IPv6, several ports, one send of 4 GSO segments.
func replies(p *testnet.Pair) traffic {
	return traffic{
		{Dst: p.SenderV4, Port: 40053, SrcPort: 53, Count: 9, Payload: 90},
		{Dst: p.SenderV6, Port: 40054, SrcPort: 53, Count: 4, Payload: 120},
		{Dst: p.SenderV4, Port: 40123, SrcPort: 123, Count: 12, Payload: 48},
		{Dst: p.SenderV4, Port: 40514, SrcPort: 514, Count: 2, Payload: 3000, Segment: 1000},
		{Dst: p.SenderV6, Port: 40515, SrcPort: 515, Count: 1, Payload: 2500, Segment: 1200},
	}
}

// TestBothDirections counts what the receiver sends (egress, at TC) and
// what it receives (ingress), exactly, per port and role, UDP_SEGMENT
// sends included: N segments and their wire bytes.
func TestBothDirections(t *testing.T) {
	for _, hook := range []string{"auto", "tc", "xdp"} {
		t.Run(hook, func(t *testing.T) {
			p := testnet.NewPair(t, testnet.Options{})
			if !p.RunInReceiver(t) {
				return
			}
			plugin := newPlugin(t, func(x *XDPUDPPorts) {
				x.Directions = []string{"ingress", "egress"}
				x.PortRoles = []string{"destination", "source"}
				x.IngressHook = hook
			}, p.ReceiverIf)
			acc := start(t, plugin)
			in, out := sample(p), replies(p)
			ingressHook := "tcx"
			if hook == "xdp" {
				ingressHook = "xdp_native"
			} else {
				// XDP sees one GSO packet as one frame; TC counts its segments.
				in = append(in, testnet.Datagrams{Dst: p.ReceiverV4, Port: 4789, SrcPort: 41007, Count: 3, Payload: 4000, Segment: 1400})
			}
			p.MustSend(t, in...)
			p.MustSendBack(t, out...)
			ms := gatherSettled(t, plugin)
			for _, d := range []struct {
				dir  string
				tr   traffic
				hook string
			}{{"ingress", in, ingressHook}, {"egress", out, "tcx"}} {
				ports, summaries := byDirection(ms, d.dir)
				want := append(d.tr.portMetricsDir(p.ReceiverIf, d.dir, roleDestination, nil),
					d.tr.portMetricsDir(p.ReceiverIf, d.dir, roleSource, nil)...)
				testutil.RequireMetricsEqual(t, want, ports, testutil.IgnoreTime(), testutil.SortMetrics())
				if len(summaries) != 1 {
					t.Fatalf("%s: %d summaries", d.dir, len(summaries))
				}
				checkSummaryDir(t, summaries[0], p.ReceiverIf, d.dir, d.hook, d.tr, 0, 0)
			}
			requireNoErrors(t, acc)
			var want []string
			if hook == "xdp" {
				want = []string{"xdp", "tcx/egress"}
			} else {
				want = []string{"tcx/ingress", "tcx/egress"}
			}
			testnet.WaitOurs(t, p.Receiver, p.ReceiverIf, time.Now(), 0, want...)
			plugin.Stop()
			testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
		})
	}
}

// On lo, auto picks TC: every datagram sent to 127.0.0.1 is counted once
// at egress and once at ingress, GSO segments one by one (generic XDP on
// lo counted a UDP_SEGMENT send as one packet).
func TestLoopback(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	plugin := newPlugin(t, func(x *XDPUDPPorts) { x.Directions = []string{"ingress", "egress"} }, "lo")
	acc := start(t, plugin)
	lo := net.IPv4(127, 0, 0, 1).To4()
	tr := traffic{
		{Dst: lo, Port: 5353, SrcPort: 41000, Count: 10, Payload: 40},
		{Dst: lo, Port: 9999, SrcPort: 41001, Count: 10, Payload: 10000, Segment: 1000},
	}
	p.MustSendBack(t, tr...) // from the receiver namespace, where lo is counted
	ms := gatherSettled(t, plugin)
	for _, dir := range []string{"ingress", "egress"} {
		ports, summaries := byDirection(ms, dir)
		testutil.RequireMetricsEqual(t, tr.portMetricsDir("lo", dir, roleDestination, nil), ports, testutil.IgnoreTime(), testutil.SortMetrics())
		if len(summaries) != 1 {
			t.Fatalf("%s: %d summaries", dir, len(summaries))
		}
		checkSummaryDir(t, summaries[0], "lo", dir, "tcx", tr, 0, 0)
	}
	requireNoErrors(t, acc)
}

// Where another XDP program is attached, auto counts at TC (what that
// program passes) and leaves it alone.
func TestAutoBesideForeignXDP(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	id := attachForeignXDP(t, p)

	plugin := newPlugin(t, nil, p.ReceiverIf)
	acc := start(t, plugin)
	tr := sample(p)
	p.MustSend(t, tr...)
	ports, summaries := split(gatherSettled(t, plugin))
	testutil.RequireMetricsEqual(t, tr.portMetrics(p.ReceiverIf, roleDestination, nil), ports, testutil.IgnoreTime(), testutil.SortMetrics())
	checkSummary(t, summaries[0], p.ReceiverIf, "tcx", tr, 0, 0)
	requireNoErrors(t, acc)
	plugin.Stop()
	if now, _ := testnet.XDPProgID(p.Receiver, p.ReceiverIf); now != id {
		t.Errorf("XDP program %d after Stop, want the foreign %d untouched", now, id)
	}
}
