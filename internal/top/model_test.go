package top

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func portPoint(iface, role, port string, packets, bytes int64) point {
	return dirPortPoint(iface, dirIngress, role, port, packets, bytes)
}

func dirPortPoint(iface, dir, role, port string, packets, bytes int64) point {
	return point{
		name:   measurementPorts,
		tags:   map[string]string{"interface": iface, "direction": dir, "port_role": role, "port": port},
		fields: map[string]any{"packets": packets, "bytes": bytes},
	}
}

func ifacePoint(iface, hook string, udp, other int64) point {
	return dirIfacePoint(iface, dirIngress, hook, udp, other)
}

// dirIfacePoint is a summary as the plugin writes it while attached.
func dirIfacePoint(iface, dir, hook string, udp, other int64) point {
	return point{
		name: measurementInterface,
		tags: map[string]string{"interface": iface, "direction": dir, "hook": hook},
		fields: map[string]any{"attached": int64(1), "packets": udp + other, "bytes": 100 * (udp + other), "udp_packets": udp,
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
		out = append(out, r.iface+"/"+r.dir+"/"+r.role+"/"+r.port)
	}
	return out
}

func TestModelRates(t *testing.T) {
	m := newModel()
	// Baseline: totals, no rates.
	m.update(at(0, portPoint("eth0", "destination", "53", 10, 1000), ifacePoint("eth0", "xdp_native", 10, 1)), time.Time{})
	s53 := m.ports[portKey{"eth0", dirIngress, "destination", "53"}]
	if s53.packets.total != 10 || s53.packets.rate != 0 {
		t.Fatalf("baseline: total %d rate %v", s53.packets.total, s53.packets.rate)
	}
	// 2 s later: 53 grew by 20, 123 appeared with 4 (from 0 at the baseline).
	m.update(at(2,
		portPoint("eth0", "destination", "53", 30, 3000),
		portPoint("eth0", "destination", "123", 4, 400),
		ifacePoint("eth0", "xdp_native", 34, 3)), time.Time{})
	s123 := m.ports[portKey{"eth0", dirIngress, "destination", "123"}]
	if s53.packets.rate != 10 || s53.bytes.rate != 1000 || s53.packets.total != 30 {
		t.Errorf("53: rate %v pkt/s %v B/s total %d, want 10, 1000, 30", s53.packets.rate, s53.bytes.rate, s53.packets.total)
	}
	if s123.packets.rate != 2 || s123.packets.total != 4 {
		t.Errorf("123: rate %v total %d, want 2, 4", s123.packets.rate, s123.packets.total)
	}
	if r := m.summaryRates(dirIngress); r[fUDPPackets] != 12 || r[fOther] != 1 {
		t.Errorf("summary rates %v", r)
	}
	// eth0 gone for a reading: totals kept, rates 0, not attached.
	m.update(nil, t0.Add(3*time.Second))
	if s53.packets.rate != 0 || s53.packets.total != 30 || len(m.attached()) != 0 || len(m.everAttachedIfaces()) != 1 {
		t.Errorf("while gone: rate %v total %d attached %d", s53.packets.rate, s53.packets.total, len(m.attached()))
	}
	// Back at 4 s, counters re-created from zero (the plugin freed them):
	// 53 reads 5, which are all new; the rate spans the 2 s since it was
	// last read.
	m.update(at(4, portPoint("eth0", "destination", "53", 5, 500), ifacePoint("eth0", "xdp_generic", 5, 0)), time.Time{})
	if s53.packets.total != 35 || s53.packets.rate != 2.5 {
		t.Errorf("after reset: total %d rate %v, want 35, 2.5", s53.packets.total, s53.packets.rate)
	}
	if a := m.attached(); len(a) != 1 || a[0].hook != "xdp_generic" {
		t.Errorf("attached %v", a)
	}
	if got, want := keys(m.byRate()), []string{"eth0/ingress/destination/53", "eth0/ingress/destination/123"}; !slices.Equal(got, want) {
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
	want := []string{"eth0/ingress/destination/1000", "eth1/ingress/destination/9", "eth1/ingress/destination/other", "eth0/ingress/destination/53", "eth0/ingress/source/53"}
	if got := keys(m.byRate()); !slices.Equal(got, want) {
		t.Errorf("byRate %v, want %v", got, want)
	}
	if got := keys(m.byTotal()); !slices.Equal(got, want) {
		t.Errorf("byTotal %v, want %v", got, want)
	}
	if !m.hasSource() {
		t.Error("hasSource false")
	}
	rate, total := m.shareSums()
	if rate[shareKey{dirIngress, "destination"}] != 207 || total[shareKey{dirIngress, "source"}] != 7 {
		t.Errorf("shareSums %v %v", rate, total)
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
	down := ifacePoint("eth1", "xdp_native", 0, 0)
	down.fields["attached"] = int64(0)
	m.update(at(1, down), time.Time{})
	if m.everAttached || len(m.attached()) != 0 || len(m.current()) != 1 || len(m.everAttachedIfaces()) != 0 {
		t.Errorf("attached = 0: ever %v, attached %d, current %d, ever attached %d", m.everAttached, len(m.attached()), len(m.current()), len(m.everAttachedIfaces()))
	}
	up := ifacePoint("eth0", "xdp_native", 1, 0)
	delete(up.fields, "attached")
	m.update(at(2, up, down), time.Time{})
	if a := m.attached(); !m.everAttached || len(a) != 1 || a[0].name != "eth0" {
		t.Errorf("eth0 without the field: ever %v, attached %v", m.everAttached, a)
	}
	// Once attached, an interface stays in the totals when it is not any
	// more.
	up.fields["attached"] = int64(0)
	m.update(at(3, up, down), time.Time{})
	if e := m.everAttachedIfaces(); len(m.attached()) != 0 || len(e) != 1 || e[0].name != "eth0" {
		t.Errorf("eth0 detached: attached %v, ever attached %v", m.attached(), e)
	}
}

// The plugin emits a series that starts counting first with 0, then with
// its value: countStarts finds those (so that top gathers again), and a
// model that takes the 0 counts the packets at the next reading.
func TestModelLeadingZero(t *testing.T) {
	m := newModel()
	// update after countStarts, which must not change the model.
	read := func(wantStarts int, pts ...point) {
		t.Helper()
		if n := m.countStarts(pts); n != wantStarts {
			t.Errorf("reading %d: %d starts, want %d", m.gen+1, n, wantStarts)
		}
		m.update(pts, time.Time{})
	}
	read(1, at(0, ifacePoint("eth0", "tcx", 0, 0))...) // baseline: the summary starts
	read(0, at(1, ifacePoint("eth0", "tcx", 0, 0))...) // idle, seen before
	// 7 packets to 53 before this reading: the port's first, with 0.
	read(1, at(2, portPoint("eth0", "destination", "53", 0, 0), ifacePoint("eth0", "tcx", 7, 0))...)
	s := m.ports[portKey{"eth0", dirIngress, "destination", "53"}]
	if s.packets.total != 0 || s.packets.rate != 0 {
		t.Errorf("leading zero: total %d, rate %v; want 0, 0", s.packets.total, s.packets.rate)
	}
	read(0, at(2.5, portPoint("eth0", "destination", "53", 7, 700), ifacePoint("eth0", "tcx", 7, 0))...)
	if s.packets.total != 7 || s.bytes.total != 700 || s.packets.rate != 14 {
		t.Errorf("its value: total %d pkt %d B, rate %v; want 7, 700, 14", s.packets.total, s.bytes.total, s.packets.rate)
	}
	// A new port read with its value straight away (the Gather after the
	// leading 0): all new, its rate since the reading before.
	read(0, at(3, portPoint("eth0", "destination", "53", 7, 700), portPoint("eth0", "destination", "123", 5, 500), ifacePoint("eth0", "tcx", 12, 0))...)
	s123 := m.ports[portKey{"eth0", dirIngress, "destination", "123"}]
	if s123.packets.total != 5 || s123.packets.rate != 10 {
		t.Errorf("123: total %d, rate %v; want 5, 10", s123.packets.total, s123.packets.rate)
	}
	// The counters start again (the plugin freed and re-created them): 0,
	// then all new.
	read(2, at(4, portPoint("eth0", "destination", "53", 0, 0), ifacePoint("eth0", "tcx", 0, 0))...)
	if s.packets.total != 7 {
		t.Errorf("restart: total %d, want 7", s.packets.total)
	}
	read(0, at(5, portPoint("eth0", "destination", "53", 3, 300), ifacePoint("eth0", "tcx", 3, 0))...)
	if udp := m.ifaces[ifaceKey{"eth0", dirIngress}].f[fUDPPackets].total; s.packets.total != 10 || udp != 15 {
		t.Errorf("after restart: port total %d, udp total %d; want 10, 15", s.packets.total, udp)
	}
}

// Ingress and egress of one interface and port are series of their own,
// and so are their summaries; shares are per direction and role.
func TestModelDirections(t *testing.T) {
	m := newModel()
	m.update(at(0, ifacePoint("eth0", "tcx", 0, 0)), time.Time{})
	if m.hasEgress() {
		t.Error("hasEgress with ingress only")
	}
	m.update(at(1,
		dirPortPoint("eth0", dirEgress, "source", "53", 30, 3000),
		dirPortPoint("eth0", dirIngress, "destination", "53", 10, 800),
		dirPortPoint("eth0", dirEgress, "destination", "53", 5, 500),
		dirIfacePoint("eth0", dirEgress, "tcx", 35, 0),
		ifacePoint("eth0", "xdp_native", 10, 1),
	), time.Time{})
	if !m.hasEgress() {
		t.Error("hasEgress false")
	}
	want := []string{"eth0/egress/source/53", "eth0/ingress/destination/53", "eth0/egress/destination/53"}
	if got := keys(m.byTotal()); !slices.Equal(got, want) {
		t.Errorf("byTotal %v, want %v", got, want)
	}
	want = []string{"eth0/ingress/destination/53", "eth0/egress/destination/53", "eth0/egress/source/53"}
	if got := keys(m.portList()); !slices.Equal(got, want) {
		t.Errorf("portList %v, want %v", got, want)
	}
	_, total := m.shareSums()
	if total[shareKey{dirIngress, "destination"}] != 10 || total[shareKey{dirEgress, "destination"}] != 5 || total[shareKey{dirEgress, "source"}] != 30 {
		t.Errorf("shareSums %v", total)
	}
	in, out := m.summaryRates(dirIngress), m.summaryRates(dirEgress)
	if in[fUDPPackets] != 10 || in[fOther] != 1 || out[fUDPPackets] != 35 {
		t.Errorf("summary rates: ingress %v, egress %v", in, out)
	}
	var got []string
	for _, s := range m.attached() {
		got = append(got, s.name+"/"+s.dir+"/"+s.hook)
	}
	if want := []string{"eth0/ingress/xdp_native", "eth0/egress/tcx"}; !slices.Equal(got, want) {
		t.Errorf("attached %v, want %v", got, want)
	}
	if got := m.directions(); !slices.Equal(got, []string{dirIngress, dirEgress}) {
		t.Errorf("directions %v", got)
	}
}
