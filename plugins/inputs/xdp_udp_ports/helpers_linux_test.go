package xdp_udp_ports

import (
	"strconv"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/metric"
	"github.com/influxdata/telegraf/testutil"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// newPlugin returns an initialised plugin for the given interfaces;
// configure changes options before Init.
func newPlugin(t *testing.T, configure func(*XDPUDPPorts), interfaces ...string) *XDPUDPPorts {
	t.Helper()
	p := New()
	p.Interfaces = interfaces
	p.Log = testutil.Logger{Name: "inputs.xdp_udp_ports"}
	if configure != nil {
		configure(p)
	}
	if err := p.Init(); err != nil {
		t.Fatal(err)
	}
	return p
}

// start starts p and stops it at cleanup.
func start(t *testing.T, p *XDPUDPPorts) *testutil.Accumulator {
	t.Helper()
	acc := &testutil.Accumulator{}
	if err := p.Start(acc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return acc
}

// gatherSettled gathers until the summary packet counts stop changing
// (every sent frame has been through the program) and returns the last
// Gather's metrics.
func gatherSettled(t *testing.T, p *XDPUDPPorts) []telegraf.Metric {
	t.Helper()
	var last []telegraf.Metric
	settled := testnet.WaitStable(func() uint64 {
		acc := &testutil.Accumulator{}
		if err := p.Gather(acc); err != nil {
			t.Fatal(err)
		}
		if err := acc.FirstError(); err != nil {
			t.Fatal(err)
		}
		last = acc.GetTelegrafMetrics()
		total := uint64(0)
		for _, m := range last {
			if m.Name() == measurementInterface {
				v, _ := m.GetField("packets")
				total += uint64(v.(int64))
			}
		}
		return total
	})
	if !settled {
		t.Fatal("counters did not settle")
	}
	return last
}

// split separates per-port metrics from summary metrics.
func split(ms []telegraf.Metric) (ports, summaries []telegraf.Metric) {
	for _, m := range ms {
		if m.Name() == measurementPorts {
			ports = append(ports, m)
		} else {
			summaries = append(summaries, m)
		}
	}
	return ports, summaries
}

// errorsOf returns the errors acc holds so far (the plugin adds them from
// its own goroutine).
func errorsOf(acc *testutil.Accumulator) []error {
	acc.Lock()
	defer acc.Unlock()
	return append([]error(nil), acc.Errors...)
}

// ourID returns the id of the one program of ours attached to dev in the
// receiver namespace (at any hook), 0 if none.
func ourID(t *testing.T, p *testnet.Pair, dev string) uint32 {
	t.Helper()
	switch ours := testnet.OurPrograms(t, p.Receiver, dev); len(ours) {
	case 0:
		return 0
	case 1:
		return ours[0].ID
	default:
		t.Fatalf("%s has %d programs of ours: %v", dev, len(ours), ours)
	}
	return 0
}

// seriesPackets returns the packets of one per-port series, 0 if absent.
func seriesPackets(ms []telegraf.Metric, ifname, dir, role, port string) int64 {
	for _, m := range ms {
		tags := m.Tags()
		if m.Name() == measurementPorts && tags["interface"] == ifname && tags["direction"] == dir && tags["port_role"] == role && tags["port"] == port {
			v, _ := m.GetField("packets")
			return v.(int64)
		}
	}
	return 0
}

// traffic is what a test sends and what the plugin should count.
type traffic []testnet.Datagrams

// portMetrics returns the expected ingress per-port metrics of role for
// ifname; with an allow-list, unlisted ports go to "other".
func (tr traffic) portMetrics(ifname, role string, allow map[int]bool) []telegraf.Metric {
	return tr.portMetricsDir(ifname, dirIngress, role, allow)
}

// portMetricsDir is portMetrics in direction dir.
func (tr traffic) portMetricsDir(ifname, dir, role string, allow map[int]bool) []telegraf.Metric {
	sums := map[string][2]int64{}
	var order []string
	for _, d := range tr {
		port := d.Port
		if role == roleSource {
			port = d.SrcPort
		}
		name := strconv.Itoa(port)
		if allow != nil && !allow[port] {
			name = "other"
		}
		if _, ok := sums[name]; !ok {
			order = append(order, name)
		}
		s := sums[name]
		s[0] += int64(d.Segments())
		s[1] += int64(d.WireBytes())
		sums[name] = s
	}
	var ms []telegraf.Metric
	for _, name := range order {
		ms = append(ms, metric.New(measurementPorts,
			map[string]string{"interface": ifname, "direction": dir, "port": name, "port_role": role},
			map[string]any{"packets": sums[name][0], "bytes": sums[name][1]},
			time.Unix(0, 0), telegraf.Counter))
	}
	return ms
}

// udp returns the datagram and byte totals.
func (tr traffic) udp() (packets, bytes int64) {
	for _, d := range tr {
		packets += int64(d.Segments())
		bytes += int64(d.WireBytes())
	}
	return packets, bytes
}

// checkSummary asserts an attached ingress summary: the udp_* and
// malformed fields exactly and packets and other_packets through the
// invariant (IPv6 neighbour and MLD traffic also arrives, so other_packets
// is not known in advance).
func checkSummary(t *testing.T, m telegraf.Metric, ifname, hook string, tr traffic, fragments, malformed int64) {
	t.Helper()
	checkSummaryDir(t, m, ifname, dirIngress, hook, tr, fragments, malformed)
}

// checkSummaryDir is checkSummary in direction dir.
func checkSummaryDir(t *testing.T, m telegraf.Metric, ifname, dir, hook string, tr traffic, fragments, malformed int64) {
	t.Helper()
	if m.Name() != measurementInterface {
		t.Fatalf("got %s, want %s", m.Name(), measurementInterface)
	}
	for tag, want := range map[string]string{"interface": ifname, "direction": dir, "hook": hook} {
		if got, _ := m.GetTag(tag); got != want {
			t.Errorf("%s tag %q, want %q", tag, got, want)
		}
	}
	f := m.Fields()
	packets, bytes := tr.udp()
	want := map[string]int64{"attached": 1, "udp_packets": packets, "udp_bytes": bytes, "udp_fragments": fragments, "malformed_packets": malformed}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %v, want %d", k, f[k], v)
		}
	}
	sum := f["udp_packets"].(int64) + f["udp_fragments"].(int64) + f["other_packets"].(int64) + f["malformed_packets"].(int64)
	if f["packets"] != sum {
		t.Errorf("packets = %v, want udp_packets + udp_fragments + other_packets + malformed_packets = %d", f["packets"], sum)
	}
	if f["bytes"].(int64) < bytes {
		t.Errorf("bytes = %v < udp_bytes %d", f["bytes"], bytes)
	}
	if len(f) != 8 {
		t.Errorf("fields %v, want exactly the 8 summary fields", f)
	}
}
