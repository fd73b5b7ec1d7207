package xdp_udp_ports

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/testutil"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// portsOf returns the per-port series of one Gather as port -> packets.
func portsOf(ms []telegraf.Metric) map[string]int64 {
	out := map[string]int64{}
	for _, m := range ms {
		if m.Name() == measurementPorts {
			port, _ := m.GetTag("port")
			v, _ := m.GetField("packets")
			out[port] = v.(int64)
		}
	}
	return out
}

// waitCounted waits until the kernel counted n UDP packets on every
// interface of plugin together, without a Gather (which would change
// what the next one emits).
func waitCounted(t *testing.T, plugin *XDPUDPPorts, n uint64) {
	t.Helper()
	count := func() uint64 {
		plugin.mu.Lock()
		defer plugin.mu.Unlock()
		var sum uint64
		var s bpf.Snapshot
		for _, it := range plugin.ifaces {
			for _, c := range it.dirs {
				if c.counters != nil {
					c.counters.Snapshot(&s)
					sum += s.Summary.UDPPackets
				}
			}
		}
		return sum
	}
	deadline := time.Now().Add(5 * time.Second)
	for count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the kernel counted %d UDP packets, want %d", count(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMaxPorts: a host that gets replies on thousands of ephemeral ports
// (or a port scan) emits at most max_ports series per interface, direction
// and role, the rest summed into port="other"; every series is a
// non-decreasing counter that starts at 0; one warning; the kernel still
// counted every port.
func TestMaxPorts(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	log := &testutil.CaptureLogger{Name: "inputs.xdp_udp_ports"}
	plugin := newPlugin(t, func(x *XDPUDPPorts) { x.Log = log }, p.ReceiverIf)
	start(t, plugin)
	const ports = 3000
	var tr traffic
	for i := range ports {
		// The first 10 ports get more packets: they win the seats first.
		n := 1
		if i < 10 {
			n = 5
		}
		tr = append(tr, testnet.Datagrams{Dst: p.ReceiverV4, Port: 20000 + i, SrcPort: 53, Count: n, Payload: 10})
	}
	p.MustSend(t, tr...)
	wantSum, _ := tr.udp()
	waitCounted(t, plugin, uint64(wantSum))
	first := gatherOnce(t, plugin)
	got := portsOf(first)
	if len(got) != defaultMaxPorts+1 {
		t.Fatalf("%d series, want max_ports = %d and other", len(got), defaultMaxPorts)
	}
	for port, n := range got {
		if n != 0 {
			t.Fatalf("port %s: first emitted with %d packets, want 0 (a new series starts at 0)", port, n)
		}
	}
	for i := range 10 {
		if _, ok := got[strconv.Itoa(20000+i)]; !ok {
			t.Errorf("port %d (most packets) has no seat", 20000+i)
		}
	}
	ms := gatherSettled(t, plugin)
	now := portsOf(ms)
	var sum int64
	for port, n := range now {
		if _, ok := got[port]; !ok {
			t.Errorf("port %s got a series after the seats were full", port)
		}
		sum += n
	}
	if sum != wantSum {
		t.Errorf("packets over all series %d, want every one sent (%d): nothing lost", sum, wantSum)
	}
	if other := now["other"]; other != ports-defaultMaxPorts {
		t.Errorf("other: %d packets, want %d", other, ports-defaultMaxPorts)
	}
	// More new ports later: they go to other, which only grows.
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 9, Count: 7, Payload: 10})
	later := portsOf(gatherSettled(t, plugin))
	if later["other"] != now["other"]+7 || len(later) != len(now) {
		t.Errorf("other %d -> %d with %d series, want +7 and no new series", now["other"], later["other"], len(later))
	}
	n := 0
	for _, w := range log.Warnings() {
		if strings.Contains(w, "max_ports (1000) reached") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d max_ports warnings, want 1: %v", n, log.Warnings())
	}
}

// With pin_path the seats survive a restart: seated ports go on with
// their values at once (no 0 that would look like a reset), ports summed
// into other stay there.
func TestMaxPortsPinned(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	pins := filepath.Join(testnet.MountBPFFS(t), "xdp")
	configure := func(x *XDPUDPPorts) { x.PinPath, x.MaxPorts = pins, 2 }
	send := func(port, n int) {
		p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: port, Count: n, Payload: 10})
	}
	first := newPlugin(t, configure, p.ReceiverIf)
	start(t, first)
	send(53, 5)
	send(123, 4)
	send(514, 3)
	got := portsOf(gatherSettled(t, first))
	if got["53"] != 5 || got["123"] != 4 || got["other"] != 3 || len(got) != 3 {
		t.Fatalf("series %v, want 53: 5, 123: 4, other: 3", got)
	}
	first.Stop()
	send(514, 1)
	send(7, 2)
	second := newPlugin(t, configure, p.ReceiverIf)
	start(t, second)
	once := portsOf(gatherOnce(t, second))
	if once["53"] != 5 || once["123"] != 4 || once["other"] != 6 || len(once) != 3 {
		t.Errorf("first Gather after the restart %v, want 53: 5, 123: 4, other: 6 (3 + 1 + 2), no leading 0", once)
	}
}

// A new series starts at 0: the first Gather that sees a port emits 0,
// the next its packets, so that differences (InfluxDB's
// non_negative_difference, Prometheus' increase) count its first burst.
func TestFirstPacketsCount(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	plugin := newPlugin(t, nil, p.ReceiverIf)
	start(t, plugin)
	first := gatherOnce(t, plugin)
	if s := summaryOf(t, first).Fields(); s["packets"] != int64(0) || s["attached"] != int64(1) {
		t.Errorf("first summary %v, want zeros (a new series) and attached = 1", s)
	}
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 5060, Count: 25, Payload: 10})
	settled := gatherSettled(t, plugin) // the port's 0 was emitted along the way
	if got := portsOf(settled)["5060"]; got != 25 {
		t.Errorf("port 5060: %d packets, want 25", got)
	}
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 5061, Count: 3, Payload: 10})
	waitCounted(t, plugin, 28)
	var seen []int64
	for range 3 {
		if n, ok := portsOf(gatherOnce(t, plugin))["5061"]; ok {
			seen = append(seen, n)
		}
	}
	if len(seen) != 3 || seen[0] != 0 || seen[1] != 3 || seen[2] != 3 {
		t.Errorf("port 5061 over three Gathers: %v, want 0 first, then 3", seen)
	}
}
