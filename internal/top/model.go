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

// The directions, as the direction tag spells them.
const (
	dirIngress = "ingress"
	dirEgress  = "egress"
)

// compareDirs orders directions ingress first, then egress, then any
// other.
func compareDirs(a, b string) int {
	rank := func(d string) int {
		switch d {
		case dirIngress:
			return 0
		case dirEgress:
			return 1
		}
		return 2
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
}

// tagDir is a point's direction; ingress when it has no direction tag
// (the only direction before the plugin counted egress).
func tagDir(p point) string {
	if d := p.tags["direction"]; d != "" {
		return d
	}
	return dirIngress
}

// portKey identifies a port series: port is a number or "other".
type portKey struct {
	iface, dir, role, port string
}

// shareKey is the whole a port's share is taken of: its direction and
// role, all interfaces.
type shareKey struct {
	dir, role string
}

type portSeries struct {
	portKey
	packets, bytes counter
	gen            int // the reading it was last in
}

// ifaceKey identifies an interface summary: one per direction counted.
type ifaceKey struct {
	name, dir string
}

type ifaceSeries struct {
	ifaceKey
	hook         string // where it is counted: xdp_native, tcx...
	attached     bool   // in the last reading it was in
	everAttached bool
	f            [nIfaceFields]counter
	gen          int
}

// model turns the plugin's readings into totals and rates.
type model struct {
	gen          int // readings taken
	everAttached bool
	first, last  time.Time
	ports        map[portKey]*portSeries
	ifaces       map[ifaceKey]*ifaceSeries
}

func newModel() *model {
	return &model{ports: map[portKey]*portSeries{}, ifaces: map[ifaceKey]*ifaceSeries{}}
}

// countStarts returns how many series of a Gather's metrics start there:
// they read 0 packets and are new to the model, or read more before. The
// plugin emits a series that starts counting (a port's first packets, an
// interface attached, counters re-created) first with 0 packets and with
// its value from the next Gather on: in such a Gather, those first packets
// are not there yet.
func (m *model) countStarts(points []point) int {
	n := 0
	for _, p := range points {
		var c *counter
		switch p.name {
		case measurementPorts:
			if s := m.ports[portKey{p.tags["interface"], tagDir(p), p.tags["port_role"], p.tags["port"]}]; s != nil {
				c = &s.packets
			}
		case measurementInterface:
			if s := m.ifaces[ifaceKey{p.tags["interface"], tagDir(p)}]; s != nil {
				c = &s.f[fPackets]
			}
		default:
			continue
		}
		if uint64Field(p.fields["packets"]) == 0 && (c == nil || c.raw != 0) {
			n++
		}
	}
	return n
}

// update takes the metrics of one Gather, read at now (the metrics' own
// timestamp wins when they have one). The first reading is the baseline:
// its counts are totals, its rates zero. A series first seen later started
// from zero at the reading before: its packets count as new (also when it
// comes first with the plugin's leading 0, see countStarts: then at the
// next reading). A series missing from a reading (its interface is gone
// for now) keeps its totals and has rate 0.
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
			k := portKey{p.tags["interface"], tagDir(p), p.tags["port_role"], p.tags["port"]}
			s := m.ports[k]
			if s == nil {
				s = &portSeries{portKey: k, packets: counter{at: since}, bytes: counter{at: since}}
				m.ports[k] = s
			}
			s.packets.observe(uint64Field(p.fields["packets"]), now)
			s.bytes.observe(uint64Field(p.fields["bytes"]), now)
			s.gen = m.gen
		case measurementInterface:
			k := ifaceKey{p.tags["interface"], tagDir(p)}
			s := m.ifaces[k]
			if s == nil {
				s = &ifaceSeries{ifaceKey: k}
				for i := range s.f {
					s.f[i].at = since
				}
				m.ifaces[k] = s
			}
			s.hook = p.tags["hook"]
			// A summary without the attached field is of an attached
			// interface.
			s.attached = true
			if v, ok := p.fields["attached"]; ok {
				s.attached = uint64Field(v) != 0
			}
			s.everAttached = s.everAttached || s.attached
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

// portList returns the series in a fixed order: interface, direction
// (ingress first), role (destination first), port number, "other" last.
func (m *model) portList() []*portSeries {
	rows := make([]*portSeries, 0, len(m.ports))
	for _, s := range m.ports {
		rows = append(rows, s)
	}
	slices.SortFunc(rows, func(a, b *portSeries) int {
		return cmp.Or(cmp.Compare(a.iface, b.iface), compareDirs(a.dir, b.dir), cmp.Compare(a.role, b.role), comparePorts(a.port, b.port))
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

// shareSums returns, per direction and port role, the packet rate and
// packet total of all its series: the whole a share is taken of.
func (m *model) shareSums() (rate map[shareKey]float64, total map[shareKey]uint64) {
	rate, total = map[shareKey]float64{}, map[shareKey]uint64{}
	for _, s := range m.ports {
		k := shareKey{s.dir, s.role}
		rate[k] += s.packets.rate
		total[k] += s.packets.total
	}
	return rate, total
}

// current returns the interface summaries of the last reading, attached
// or not, by name and direction.
func (m *model) current() []*ifaceSeries {
	var list []*ifaceSeries
	for _, s := range m.ifaces {
		if s.gen == m.gen {
			list = append(list, s)
		}
	}
	sortIfaces(list)
	return list
}

// attached returns the interface summaries attached in the last reading,
// by name and direction.
func (m *model) attached() []*ifaceSeries {
	return slices.DeleteFunc(m.current(), func(s *ifaceSeries) bool { return !s.attached })
}

// everAttachedIfaces returns the interface summaries that were attached in
// any reading, by name and direction.
func (m *model) everAttachedIfaces() []*ifaceSeries {
	var list []*ifaceSeries
	for _, s := range m.ifaces {
		if s.everAttached {
			list = append(list, s)
		}
	}
	sortIfaces(list)
	return list
}

func sortIfaces(list []*ifaceSeries) {
	slices.SortFunc(list, func(a, b *ifaceSeries) int {
		return cmp.Or(cmp.Compare(a.name, b.name), compareDirs(a.dir, b.dir))
	})
}

// directions returns the directions of the summaries seen, ingress first.
func (m *model) directions() []string {
	var dirs []string
	for k := range m.ifaces {
		if !slices.Contains(dirs, k.dir) {
			dirs = append(dirs, k.dir)
		}
	}
	slices.SortFunc(dirs, compareDirs)
	return dirs
}

// summaryRates sums the interface rates of the last reading in one
// direction.
func (m *model) summaryRates(dir string) (r [nIfaceFields]float64) {
	for _, s := range m.ifaces {
		if s.dir != dir {
			continue
		}
		for i := range r {
			r[i] += s.f[i].rate
		}
	}
	return r
}

// hasEgress reports whether egress is counted: any summary or series of
// egress. The plugin emits a summary of every direction counted at every
// Gather, traffic or not.
func (m *model) hasEgress() bool {
	for k := range m.ifaces {
		if k.dir != dirIngress {
			return true
		}
	}
	for k := range m.ports {
		if k.dir != dirIngress {
			return true
		}
	}
	return false
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
