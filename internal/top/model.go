package top

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// The plugin's measurements, as `top` reads them.
const (
	measurementPorts     = "xdp_udp_ports"
	measurementInterface = "xdp_udp_ports_interface"
)

// Fields of the interface measurement, in ifaceSeries.f order.
var ifaceFields = [...]string{"packets", "bytes", "udp_packets", "udp_bytes", "udp_fragments", "other_packets", "malformed_packets"}

const (
	fPackets = iota
	fBytes
	fUDPPackets
	fUDPBytes
	fFragments
	fOther
	fMalformed
	nIfaceFields
)

// counter follows one of the plugin's ever-growing counters.
type counter struct {
	raw   uint64    // last value read
	at    time.Time // when raw was read
	total uint64    // counted since the first reading
	rate  float64   // per second between the last two readings, 0 if not in the last one
}

// observe takes a new reading. A value below the last one means the
// plugin's counters started again (it frees the maps of interfaces that
// are long gone when it needs room): the new value is all new counts.
func (c *counter) observe(v uint64, at time.Time) {
	delta := v - c.raw
	if v < c.raw {
		delta = v
	}
	c.total += delta
	c.rate = 0
	if dt := at.Sub(c.at).Seconds(); dt > 0 {
		c.rate = float64(delta) / dt
	}
	c.raw, c.at = v, at
}

// portKey identifies a port series: port is a number or "other".
type portKey struct {
	iface, role, port string
}

type portSeries struct {
	portKey
	packets, bytes counter
	gen            int // the reading it was last in
}

type ifaceSeries struct {
	name, mode string
	attached   bool // in the last reading it was in
	f          [nIfaceFields]counter
	gen        int
}

// model turns the plugin's readings into totals and rates.
type model struct {
	gen          int // readings taken
	everAttached bool
	first, last  time.Time
	ports        map[portKey]*portSeries
	ifaces       map[string]*ifaceSeries
}

func newModel() *model {
	return &model{ports: map[portKey]*portSeries{}, ifaces: map[string]*ifaceSeries{}}
}

// update takes the metrics of one Gather, read at now (the metrics' own
// timestamp wins when they have one). The first reading is the baseline:
// its counts are totals, its rates zero. A series first seen later started
// from zero at the reading before (the plugin reports only ports with
// packets). A series missing from a reading (its interface is gone for
// now) keeps its totals and has rate 0.
func (m *model) update(points []point, now time.Time) {
	if len(points) > 0 && !points[0].time.IsZero() {
		now = points[0].time
	}
	m.gen++
	baseline := m.gen == 1
	since := m.last
	if baseline {
		m.first, since = now, now
	}
	for _, p := range points {
		switch p.name {
		case measurementPorts:
			k := portKey{p.tags["interface"], p.tags["port_role"], p.tags["port"]}
			s := m.ports[k]
			if s == nil {
				s = &portSeries{portKey: k, packets: counter{at: since}, bytes: counter{at: since}}
				m.ports[k] = s
			}
			s.packets.observe(uint64Field(p.fields["packets"]), now)
			s.bytes.observe(uint64Field(p.fields["bytes"]), now)
			s.gen = m.gen
		case measurementInterface:
			name := p.tags["interface"]
			s := m.ifaces[name]
			if s == nil {
				s = &ifaceSeries{name: name}
				for i := range s.f {
					s.f[i].at = since
				}
				m.ifaces[name] = s
			}
			s.mode = p.tags["xdp_mode"]
			// A summary without the attached field is of an attached
			// interface.
			s.attached = true
			if v, ok := p.fields["attached"]; ok {
				s.attached = uint64Field(v) != 0
			}
			m.everAttached = m.everAttached || s.attached
			for i, f := range ifaceFields {
				s.f[i].observe(uint64Field(p.fields[f]), now)
			}
			s.gen = m.gen
		}
	}
	for _, s := range m.ports {
		if s.gen != m.gen {
			s.packets.rate, s.bytes.rate = 0, 0
		}
	}
	for _, s := range m.ifaces {
		if s.gen != m.gen {
			for i := range s.f {
				s.f[i].rate = 0
			}
		}
	}
	m.last = now
}

func uint64Field(v any) uint64 {
	switch n := v.(type) {
	case int64:
		if n > 0 {
			return uint64(n)
		}
	case uint64:
		return n
	case float64:
		if n > 0 {
			return uint64(n)
		}
	}
	return 0
}

// byRate returns every port series, highest packet rate first (then most
// packets).
func (m *model) byRate() []*portSeries {
	rows := m.portList()
	slices.SortStableFunc(rows, func(a, b *portSeries) int {
		return cmp.Or(cmp.Compare(b.packets.rate, a.packets.rate), cmp.Compare(b.packets.total, a.packets.total))
	})
	return rows
}

// byTotal returns every port series seen, most packets first.
func (m *model) byTotal() []*portSeries {
	rows := m.portList()
	slices.SortStableFunc(rows, func(a, b *portSeries) int {
		return cmp.Compare(b.packets.total, a.packets.total)
	})
	return rows
}

// portList returns the series in a fixed order: interface, role
// (destination first), port number, "other" last.
func (m *model) portList() []*portSeries {
	rows := make([]*portSeries, 0, len(m.ports))
	for _, s := range m.ports {
		rows = append(rows, s)
	}
	slices.SortFunc(rows, func(a, b *portSeries) int {
		return cmp.Or(cmp.Compare(a.iface, b.iface), cmp.Compare(a.role, b.role), comparePorts(a.port, b.port))
	})
	return rows
}

func comparePorts(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(x, y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return cmp.Compare(a, b)
}

// roleSums returns, per port role, the packet rate and packet total of all
// its series: the whole a share is taken of.
func (m *model) roleSums() (rate map[string]float64, total map[string]uint64) {
	rate, total = map[string]float64{}, map[string]uint64{}
	for _, s := range m.ports {
		rate[s.role] += s.packets.rate
		total[s.role] += s.packets.total
	}
	return rate, total
}

// attached returns the interfaces attached in the last reading, by name.
func (m *model) attached() []*ifaceSeries {
	var list []*ifaceSeries
	for _, s := range m.ifaces {
		if s.gen == m.gen && s.attached {
			list = append(list, s)
		}
	}
	slices.SortFunc(list, func(a, b *ifaceSeries) int { return cmp.Compare(a.name, b.name) })
	return list
}

// allIfaces returns every interface seen, by name.
func (m *model) allIfaces() []*ifaceSeries {
	list := make([]*ifaceSeries, 0, len(m.ifaces))
	for _, s := range m.ifaces {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b *ifaceSeries) int { return cmp.Compare(a.name, b.name) })
	return list
}

// summaryRates sums the interface rates of the last reading.
func (m *model) summaryRates() (r [nIfaceFields]float64) {
	for _, s := range m.ifaces {
		for i := range r {
			r[i] += s.f[i].rate
		}
	}
	return r
}

// hasSource reports whether any series counts source ports.
func (m *model) hasSource() bool {
	for k := range m.ports {
		if k.role != "destination" {
			return true
		}
	}
	return false
}
