package xdp_udp_ports

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/testutil"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// waitAttached waits until dev in the receiver namespace has our program
// at TC ingress (the default on a veth), and fails if that takes longer
// than within.
func waitAttached(t *testing.T, p *testnet.Pair, dev string, since time.Time, within time.Duration) {
	t.Helper()
	testnet.WaitOurs(t, p.Receiver, dev, since, within, "tcx/ingress")
	t.Logf("%s attached %s after it appeared", dev, time.Since(since).Round(time.Millisecond))
}

// seriesOf returns the destination port series of one interface as
// port -> packets.
func seriesOf(ms []telegraf.Metric, ifname string) map[string]int64 {
	out := map[string]int64{}
	for _, m := range ms {
		if i, _ := m.GetTag("interface"); m.Name() == measurementPorts && i == ifname {
			port, _ := m.GetTag("port")
			v, _ := m.GetField("packets")
			out[port] = v.(int64)
		}
	}
	return out
}

func requireNoErrors(t *testing.T, acc *testutil.Accumulator) {
	t.Helper()
	if errs := errorsOf(acc); len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
}

func TestGlobHotPlug(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	plugin := newPlugin(t, nil, "veth-t*")
	acc := start(t, plugin) // nothing matches yet: fine

	created := time.Now()
	a := p.AddLink(t, "veth-s1", "veth-t1", 1)
	b := p.AddLink(t, "veth-s2", "veth-t2", 2)
	waitAttached(t, p, "veth-t1", created, time.Second)
	waitAttached(t, p, "veth-t2", created, time.Second)
	send := func(l *testnet.Link, port, n int) {
		p.MustSend(t, testnet.Datagrams{Dst: l.ReceiverV4, Port: port, Count: n, Payload: 10})
	}
	send(a, 1001, 5)
	send(b, 1002, 6)
	ms := gatherSettled(t, plugin)
	if got := seriesOf(ms, "veth-t1"); len(got) != 1 || got["1001"] != 5 {
		t.Errorf("veth-t1 series %v, want port 1001: 5", got)
	}
	if got := seriesOf(ms, "veth-t2"); len(got) != 1 || got["1002"] != 6 {
		t.Errorf("veth-t2 series %v, want port 1002: 6", got)
	}
	if got := seriesOf(ms, p.ReceiverIf); len(got) != 0 {
		t.Errorf("%s does not match veth-t* but has series %v", p.ReceiverIf, got)
	}

	p.DelLink(t, "veth-t1")
	send(b, 1002, 3)
	ms = gatherSettled(t, plugin)
	if got := seriesOf(ms, "veth-t1"); len(got) != 0 {
		t.Errorf("deleted veth-t1 still emits %v", got)
	}
	if got := seriesOf(ms, "veth-t2"); got["1002"] != 9 {
		t.Errorf("veth-t2 port 1002: %d packets, want 9", got["1002"])
	}
	requireNoErrors(t, acc)
}

func TestRecreatedInterfaceContinues(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	l := p.AddLink(t, "veth-s9", "veth-r9", 9)
	plugin := newPlugin(t, nil, "veth-r9")
	acc := start(t, plugin)
	p.MustSend(t, testnet.Datagrams{Dst: l.ReceiverV4, Port: 514, Count: 4, Payload: 100})
	if got := seriesOf(gatherSettled(t, plugin), "veth-r9"); got["514"] != 4 {
		t.Fatalf("port 514: %d packets, want 4", got["514"])
	}

	p.DelLink(t, "veth-r9")
	created := time.Now()
	l = p.AddLink(t, "veth-s9", "veth-r9", 9)
	waitAttached(t, p, "veth-r9", created, time.Second)
	p.MustSend(t, testnet.Datagrams{Dst: l.ReceiverV4, Port: 514, Count: 3, Payload: 100})
	if got := seriesOf(gatherSettled(t, plugin), "veth-r9"); got["514"] != 7 {
		t.Fatalf("port 514 after re-creation: %d packets, want 7 (4 + 3, not reset)", got["514"])
	}
	requireNoErrors(t, acc)
}

func TestForeignProgramIsLeftAlone(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	id := attachForeignXDP(t, p)

	plugin := newPlugin(t, func(x *XDPUDPPorts) { x.IngressHook = "xdp" }, p.ReceiverIf)
	acc := start(t, plugin)
	if len(errorsOf(acc)) != 1 {
		t.Fatalf("errors %v, want one naming the foreign program", errorsOf(acc))
	}
	msg := errorsOf(acc)[0].Error()
	t.Logf("reported: %s", msg)
	for _, want := range []string{p.ReceiverIf, "another XDP program", "id " + strconv.Itoa(int(id)), `"foreign_pass"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %s", msg, want)
		}
	}
	ports, summaries := split(gatherSettled(t, plugin))
	if len(ports) != 0 {
		t.Errorf("an interface that is not attached emits per-port series %v", ports)
	}
	if len(summaries) != 1 || summaries[0].Fields()["attached"] != int64(0) {
		t.Errorf("summaries %v, want one with attached = 0", summaries)
	}
	plugin.Stop()
	if now, _ := testnet.XDPProgID(p.Receiver, p.ReceiverIf); now != id {
		t.Errorf("XDP program id %d after Stop, want the foreign %d untouched", now, id)
	}
}

func TestMemoryGuardRefusesInterface(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	p.AddLink(t, "veth-s1", "veth-m1", 1)
	p.AddLink(t, "veth-s2", "veth-m2", 2)
	loader, err := bpf.NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	layout, _ := loader.Layout(bpf.Config{})
	one := layout.KernelMemory()
	plugin := newPlugin(t, func(x *XDPUDPPorts) { x.MaxKernelMemory = config.Size(one + one/2) }, "veth-m1", "veth-m2")
	acc := start(t, plugin)
	if len(errorsOf(acc)) != 1 {
		t.Fatalf("errors %v, want one refusing the second interface", errorsOf(acc))
	}
	msg := errorsOf(acc)[0].Error()
	t.Logf("reported: %s", msg)
	for _, want := range []string{"max_kernel_memory", formatBytes(one), "ports allow-list"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	attached := 0
	for _, dev := range []string{"veth-m1", "veth-m2"} {
		if ourID(t, p, dev) != 0 {
			attached++
		}
	}
	if attached != 1 {
		t.Errorf("%d interfaces attached, want 1", attached)
	}
}

func TestModes(t *testing.T) {
	cases := []struct {
		mode    string
		want    string   // xdp_mode tag; "" if attaching must fail
		errWant []string // what the error must name
	}{
		{mode: "auto", want: "xdp_native"},
		{mode: "native", want: "xdp_native"},
		{mode: "generic", want: "xdp_generic"},
		{mode: "offload", errWant: []string{"offload mode", "EINVAL", "hint", `xdp_mode = "native"`}},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			p := testnet.NewPair(t, testnet.Options{})
			if !p.RunInReceiver(t) {
				return
			}
			plugin := newPlugin(t, func(x *XDPUDPPorts) { x.IngressHook, x.XDPMode = "xdp", tc.mode }, p.ReceiverIf)
			acc := start(t, plugin)
			if tc.want == "" {
				if len(errorsOf(acc)) != 1 {
					t.Fatalf("errors %v, want one", errorsOf(acc))
				}
				t.Logf("reported: %s", errorsOf(acc)[0])
				for _, w := range append(tc.errWant, p.ReceiverIf) {
					if !strings.Contains(errorsOf(acc)[0].Error(), w) {
						t.Errorf("error %q does not mention %s", errorsOf(acc)[0], w)
					}
				}
				testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
				return
			}
			requireNoErrors(t, acc)
			tr := traffic{{Dst: p.ReceiverV4, Port: 7, Count: 3, Payload: 20}}
			p.MustSend(t, tr...)
			_, summaries := split(gatherSettled(t, plugin))
			if len(summaries) != 1 {
				t.Fatalf("%d summaries", len(summaries))
			}
			checkSummary(t, summaries[0], p.ReceiverIf, tc.want, tr, 0, 0)
		})
	}
}

func TestJumboNative(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{MTU: 9000})
	if !p.RunInReceiver(t) {
		return
	}
	plugin := newPlugin(t, func(x *XDPUDPPorts) { x.XDPMode = "native" }, p.ReceiverIf)
	acc := start(t, plugin)
	requireNoErrors(t, acc)
	tr := traffic{{Dst: p.ReceiverV4, Port: 4789, Count: 2, Payload: 9000 - 20 - 8}}
	p.MustSend(t, tr...)
	ports, summaries := split(gatherSettled(t, plugin))
	testutil.RequireMetricsEqual(t, tr.portMetrics(p.ReceiverIf, roleDestination, nil), ports, testutil.IgnoreTime())
	checkSummary(t, summaries[0], p.ReceiverIf, "xdp_native", tr, 0, 0)
	if b, _ := ports[0].GetField("bytes"); b != int64(2*(14+9000)) {
		t.Errorf("bytes %v, want %d", b, 2*(14+9000))
	}
}

// A glob that matches nothing gets one warning (at Start, and then only
// again after it matched something in between), not one per resync.
func TestGlobMatchingNothingWarnsOnce(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	log := &testutil.CaptureLogger{Name: "inputs.xdp_udp_ports"}
	plugin := newPlugin(t, func(x *XDPUDPPorts) {
		x.Log = log
		x.ResyncInterval = config.Duration(minResyncInterval)
	}, "vnone*", p.ReceiverIf)
	start(t, plugin)
	time.Sleep(5 * minResyncInterval)
	warned := func() (n int) {
		for _, w := range log.Warnings() {
			if strings.Contains(w, `"vnone*" matches no interface`) {
				n++
			}
		}
		return n
	}
	if n := warned(); n != 1 {
		t.Fatalf("%d warnings about the glob after 5 resyncs, want 1: %v", n, log.Warnings())
	}
	l := p.AddLink(t, "vnone-s", "vnone1", 3)
	testnet.WaitOurs(t, p.Receiver, "vnone1", time.Now(), time.Second, "tcx/ingress")
	time.Sleep(3 * minResyncInterval) // a resync sees it match
	p.DelLink(t, l.ReceiverIf)
	time.Sleep(5 * minResyncInterval)
	if n := warned(); n != 2 {
		t.Errorf("%d warnings after the glob matched and stopped matching, want 2", n)
	}
}

// Counters of an interface absent for longer than
// absent_interface_timeout are freed (logged): a re-created one starts
// from zero. Before the timeout they continue (TestRecreatedInterfaceContinues).
func TestAbsentInterfaceTimeout(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	log := &testutil.CaptureLogger{Name: "inputs.xdp_udp_ports"}
	l := p.AddLink(t, "veth-s8", "veth-a8", 8)
	plugin := newPlugin(t, func(x *XDPUDPPorts) {
		x.Log = log
		x.ResyncInterval = config.Duration(minResyncInterval)
		x.AbsentInterfaceTimeout = config.Duration(300 * time.Millisecond)
	}, "veth-a*")
	start(t, plugin)
	p.MustSend(t, testnet.Datagrams{Dst: l.ReceiverV4, Port: 514, Count: 4, Payload: 100})
	if got := seriesOf(gatherSettled(t, plugin), "veth-a8"); got["514"] != 4 {
		t.Fatalf("port 514: %d packets, want 4", got["514"])
	}
	p.DelLink(t, "veth-a8")
	deadline := time.Now().Add(3 * time.Second)
	for !slices.ContainsFunc(log.Messages(), func(e testutil.Entry) bool {
		return strings.Contains(e.Text, "veth-a8 has been gone since") && strings.Contains(e.Text, "freeing its counters")
	}) {
		if time.Now().After(deadline) {
			t.Fatal("the counters of the absent interface were not freed (no log line)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	plugin.mu.Lock()
	kept := plugin.ifaces["veth-a8"] != nil
	plugin.mu.Unlock()
	if kept {
		t.Error("the absent interface is still kept")
	}
	created := time.Now()
	l = p.AddLink(t, "veth-s8", "veth-a8", 8)
	waitAttached(t, p, "veth-a8", created, time.Second)
	p.MustSend(t, testnet.Datagrams{Dst: l.ReceiverV4, Port: 514, Count: 3, Payload: 100})
	if got := seriesOf(gatherSettled(t, plugin), "veth-a8"); got["514"] != 3 {
		t.Errorf("port 514 after the timeout: %d packets, want 3 (restarted from zero)", got["514"])
	}
}
