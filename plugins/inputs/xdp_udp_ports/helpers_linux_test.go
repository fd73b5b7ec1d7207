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

// traffic is what a test sends and what the plugin should count.
type traffic []testnet.Datagrams

// portMetrics returns the expected per-port metrics of role for ifname;
// with an allow-list, unlisted ports go to "other".
func (tr traffic) portMetrics(ifname, role string, allow map[int]bool) []telegraf.Metric {
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
		s[0] += int64(d.Count)
		s[1] += int64(d.Count * testnet.FrameLen(d.Dst, d.Payload))
		sums[name] = s
	}
	var ms []telegraf.Metric
	for _, name := range order {
		ms = append(ms, metric.New(measurementPorts,
			map[string]string{"interface": ifname, "port": name, "port_role": role},
			map[string]any{"packets": sums[name][0], "bytes": sums[name][1]},
			time.Unix(0, 0), telegraf.Counter))
	}
	return ms
}

// udp returns the datagram and byte totals.
func (tr traffic) udp() (packets, bytes int64) {
	for _, d := range tr {
		packets += int64(d.Count)
		bytes += int64(d.Count * testnet.FrameLen(d.Dst, d.Payload))
	}
	return packets, bytes
}

// checkSummary asserts the udp_* and malformed fields exactly and packets
// and other_packets through the invariant (IPv6 neighbour and MLD traffic
// also arrives, so other_packets is not known in advance).
func checkSummary(t *testing.T, m telegraf.Metric, ifname, mode string, tr traffic, fragments, malformed int64) {
	t.Helper()
	if m.Name() != measurementInterface {
		t.Fatalf("got %s, want %s", m.Name(), measurementInterface)
	}
	if got, _ := m.GetTag("interface"); got != ifname {
		t.Errorf("interface tag %q, want %q", got, ifname)
	}
	if got, _ := m.GetTag("xdp_mode"); got != mode {
		t.Errorf("xdp_mode tag %q, want %q", got, mode)
	}
	f := m.Fields()
	packets, bytes := tr.udp()
	want := map[string]int64{"udp_packets": packets, "udp_bytes": bytes, "udp_fragments": fragments, "malformed_packets": malformed}
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
	if len(f) != 7 {
		t.Errorf("fields %v, want exactly the 7 summary fields", f)
	}
}
