package top

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func portPoint(iface, role, port string, packets, bytes int64) point {
	return point{
		name:   measurementPorts,
		tags:   map[string]string{"interface": iface, "port_role": role, "port": port},
		fields: map[string]any{"packets": packets, "bytes": bytes},
	}
}

func ifacePoint(iface, mode string, udp, other int64) point {
	return point{
		name: measurementInterface,
		tags: map[string]string{"interface": iface, "xdp_mode": mode},
		fields: map[string]any{"packets": udp + other, "bytes": 100 * (udp + other), "udp_packets": udp,
			"udp_bytes": 100 * udp, "udp_fragments": int64(0), "other_packets": other, "malformed_packets": int64(0)},
	}
}

// at stamps the points as the plugin does: one timestamp per Gather.
func at(sec float64, pts ...point) []point {
	for i := range pts {
		pts[i].time = t0.Add(time.Duration(sec * float64(time.Second)))
	}
	return pts
}

func keys(rows []*portSeries) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.iface+"/"+r.role+"/"+r.port)
	}
	return out
}

func TestModelRates(t *testing.T) {
	m := newModel()
	// Baseline: totals, no rates.
	m.update(at(0, portPoint("eth0", "destination", "53", 10, 1000), ifacePoint("eth0", "native", 10, 1)), time.Time{})
	s53 := m.ports[portKey{"eth0", "destination", "53"}]
	if s53.packets.total != 10 || s53.packets.rate != 0 {
		t.Fatalf("baseline: total %d rate %v", s53.packets.total, s53.packets.rate)
	}
	// 2 s later: 53 grew by 20, 123 appeared with 4 (from 0 at the baseline).
	m.update(at(2,
		portPoint("eth0", "destination", "53", 30, 3000),
		portPoint("eth0", "destination", "123", 4, 400),
		ifacePoint("eth0", "native", 34, 3)), time.Time{})
	s123 := m.ports[portKey{"eth0", "destination", "123"}]
	if s53.packets.rate != 10 || s53.bytes.rate != 1000 || s53.packets.total != 30 {
		t.Errorf("53: rate %v pkt/s %v B/s total %d, want 10, 1000, 30", s53.packets.rate, s53.bytes.rate, s53.packets.total)
	}
	if s123.packets.rate != 2 || s123.packets.total != 4 {
		t.Errorf("123: rate %v total %d, want 2, 4", s123.packets.rate, s123.packets.total)
	}
	if r := m.summaryRates(); r[fUDPPackets] != 12 || r[fOther] != 1 {
		t.Errorf("summary rates %v", r)
	}
	// eth0 gone for a reading: totals kept, rates 0, not attached.
	m.update(nil, t0.Add(3*time.Second))
	if s53.packets.rate != 0 || s53.packets.total != 30 || len(m.attached()) != 0 || len(m.allIfaces()) != 1 {
		t.Errorf("while gone: rate %v total %d attached %d", s53.packets.rate, s53.packets.total, len(m.attached()))
	}
	// Back at 4 s, counters re-created from zero (the plugin freed them):
	// 53 reads 5, which are all new; the rate spans the 2 s since it was
	// last read.
	m.update(at(4, portPoint("eth0", "destination", "53", 5, 500), ifacePoint("eth0", "generic", 5, 0)), time.Time{})
	if s53.packets.total != 35 || s53.packets.rate != 2.5 {
		t.Errorf("after reset: total %d rate %v, want 35, 2.5", s53.packets.total, s53.packets.rate)
	}
	if a := m.attached(); len(a) != 1 || a[0].mode != "generic" {
		t.Errorf("attached %v", a)
	}
	if got, want := keys(m.byRate()), []string{"eth0/destination/53", "eth0/destination/123"}; !slices.Equal(got, want) {
		t.Errorf("byRate %v, want %v", got, want)
	}
}

func TestModelOrder(t *testing.T) {
	m := newModel()
	m.update(nil, t0)
	m.update(at(1,
		portPoint("eth1", "destination", "other", 50, 1),
		portPoint("eth1", "destination", "9", 50, 1),
		portPoint("eth0", "source", "53", 7, 1),
		portPoint("eth0", "destination", "53", 7, 1),
		portPoint("eth0", "destination", "1000", 100, 1),
	), time.Time{})
	// Equal rates and totals: interface, role, port number, "other" last.
	want := []string{"eth0/destination/1000", "eth1/destination/9", "eth1/destination/other", "eth0/destination/53", "eth0/source/53"}
	if got := keys(m.byRate()); !slices.Equal(got, want) {
		t.Errorf("byRate %v, want %v", got, want)
	}
	if got := keys(m.byTotal()); !slices.Equal(got, want) {
		t.Errorf("byTotal %v, want %v", got, want)
	}
	if !m.hasSource() {
		t.Error("hasSource false")
	}
	rate, total := m.roleSums()
	if rate["destination"] != 207 || total["source"] != 7 {
		t.Errorf("roleSums %v %v", rate, total)
	}
}

// An interface counts as attached when its summary has no attached field,
// or attached = 1; one reported with attached = 0 is not in the header.
func TestModelAttached(t *testing.T) {
	m := newModel()
	m.update(nil, t0)
	if m.everAttached {
		t.Error("attached before any summary")
	}
	down := ifacePoint("eth1", "native", 0, 0)
	down.fields["attached"] = int64(0)
	m.update(at(1, down), time.Time{})
	if m.everAttached || len(m.attached()) != 0 || len(m.allIfaces()) != 1 {
		t.Errorf("attached = 0: ever %v, attached %d, all %d", m.everAttached, len(m.attached()), len(m.allIfaces()))
	}
	m.update(at(2, ifacePoint("eth0", "native", 1, 0), down), time.Time{})
	if a := m.attached(); !m.everAttached || len(a) != 1 || a[0].name != "eth0" {
		t.Errorf("eth0 without the field: ever %v, attached %v", m.everAttached, a)
	}
}
