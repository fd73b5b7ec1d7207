package xdp_udp_ports

import (
	"strings"
	"testing"

	"github.com/influxdata/telegraf/testutil"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// sample is a mix of IPv4 and IPv6 datagrams to several ports, with fixed
// source ports so that source counting is exact too.
func sample(p *testnet.Pair) traffic {
	return traffic{
		{Dst: p.ReceiverV4, Port: 53, SrcPort: 41001, Count: 9, Payload: 30},
		{Dst: p.ReceiverV6, Port: 53, SrcPort: 41002, Count: 4, Payload: 60},
		{Dst: p.ReceiverV4, Port: 123, SrcPort: 41003, Count: 48, Payload: 48},
		{Dst: p.ReceiverV6, Port: 5060, SrcPort: 41004, Count: 7, Payload: 700},
		{Dst: p.ReceiverV4, Port: 5061, SrcPort: 41005, Count: 3, Payload: 1},
		{Dst: p.ReceiverV4, Port: 9999, SrcPort: 41006, Count: 2, Payload: 1400},
	}
}

func TestGather(t *testing.T) {
	cases := []struct {
		name      string
		configure func(*XDPUDPPorts)
		roles     []string
		allow     map[int]bool
	}{
		{name: "destination", roles: []string{roleDestination}},
		{
			name:      "destination+source",
			configure: func(p *XDPUDPPorts) { p.PortRoles = []string{roleDestination, roleSource} },
			roles:     []string{roleDestination, roleSource},
		},
		{
			name:      "allow-list",
			configure: func(p *XDPUDPPorts) { p.Ports = []string{"53", "5060-5061"} },
			roles:     []string{roleDestination},
			allow:     map[int]bool{53: true, 5060: true, 5061: true},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testnet.NewPair(t, testnet.Options{})
			if !p.RunInReceiver(t) {
				return
			}
			plugin := newPlugin(t, tc.configure, p.ReceiverIf)
			acc := start(t, plugin)
			tr := sample(p)
			p.MustSend(t, tr...)
			ports, summaries := split(gatherSettled(t, plugin))

			var want = tr.portMetrics(p.ReceiverIf, tc.roles[0], tc.allow)
			for _, role := range tc.roles[1:] {
				want = append(want, tr.portMetrics(p.ReceiverIf, role, tc.allow)...)
			}
			testutil.RequireMetricsEqual(t, want, ports, testutil.IgnoreTime(), testutil.SortMetrics())
			if len(summaries) != 1 {
				t.Fatalf("got %d summary metrics, want 1", len(summaries))
			}
			checkSummary(t, summaries[0], p.ReceiverIf, "tcx", tr, 0, 0)
			if len(errorsOf(acc)) != 0 {
				t.Errorf("errors: %v", errorsOf(acc))
			}
		})
	}
}

func TestStartMissingInterface(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	plugin := newPlugin(t, nil, p.ReceiverIf, "nosuch0")
	err := plugin.Start(&testutil.Accumulator{})
	if err == nil {
		plugin.Stop()
		t.Fatal("Start succeeded with a missing interface")
	}
	for _, want := range []string{"interfaces", `"nosuch0"`, "missing_interfaces"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
}

func TestStopTwice(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	plugin := newPlugin(t, nil, p.ReceiverIf)
	if err := plugin.Start(&testutil.Accumulator{}); err != nil {
		t.Fatal(err)
	}
	if ours := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); len(ours) != 1 {
		t.Fatalf("attached after Start: %v, want one program", ours)
	}
	plugin.Stop()
	plugin.Stop()
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
	acc := &testutil.Accumulator{}
	if err := plugin.Gather(acc); err != nil || len(acc.Metrics) != 0 {
		t.Errorf("Gather after Stop: %v, %d metrics", err, len(acc.Metrics))
	}
}
