//go:build e2e && linux

package e2e

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// Tag names (and Prometheus labels) the test reads, in one place.
const (
	tagInterface = "interface"
	tagDirection = "direction"
	tagPort      = "port"
	tagRole      = "port_role"
	tagHook      = "hook" // xdp_udp_ports_interface: the hook in use

	dirIngress = "ingress"
	dirEgress  = "egress"

	roleDestination = "destination"
	roleSource      = "source"
)

// directions is what both variants count (the directions option).
var directions = []string{dirIngress, dirEgress}

// portKey identifies one series of the xdp_udp_ports measurement.
type portKey struct{ iface, dir, role, port string }

func portKeyOf(tags map[string]string) portKey {
	return portKey{tags[tagInterface], tags[tagDirection], tags[tagRole], tags[tagPort]}
}

// summaryTags are the tags of the xdp_udp_ports_interface series of one
// direction the variant must produce.
func summaryTags(v variant, iface, dir string) map[string]string {
	return map[string]string{tagInterface: iface, tagDirection: dir, tagHook: v.wantHooks[dir]}
}

type counter struct{ packets, bytes int64 }

func (c counter) add(o counter) counter { return counter{c.packets + o.packets, c.bytes + o.bytes} }

// summaryCounts is what one xdp_udp_ports_interface series must hold:
// exact for UDP, fragments and malformed frames; other frames at least
// (ICMP port unreachables answer the datagrams both ways, and IPv6
// neighbour discovery may add some).
type summaryCounts struct {
	udpPackets, udpBytes, fragments, malformed, minOther, minBytes int64
}

func (s summaryCounts) add(o summaryCounts) summaryCounts {
	return summaryCounts{s.udpPackets + o.udpPackets, s.udpBytes + o.udpBytes, s.fragments + o.fragments,
		s.malformed + o.malformed, s.minOther + o.minOther, s.minBytes + o.minBytes}
}

// ledger is what the plugin must report for the traffic sent so far
// under one variant, through plugin restarts (without pin_path, a restart
// starts every counter at zero again).
type ledger struct {
	v     variant
	iface string
	run   map[portKey]counter // this plugin process's counters
	last  map[portKey]counter // the newest value of each series (InfluxDB last(), Prometheus now)
	total map[portKey]counter // everything counted: sums of differences, increase()

	// By direction.
	runSummary, totalSummary map[string]summaryCounts
}

func newLedger(v variant, iface string) *ledger {
	return &ledger{v: v, iface: iface, run: map[portKey]counter{}, last: map[portKey]counter{}, total: map[portKey]counter{},
		runSummary: map[string]summaryCounts{}, totalSummary: map[string]summaryCounts{}}
}

// add books datagrams (and, with frames, the raw frames) that the
// receiver's interface received (dir ingress) or sent (egress).
func (l *ledger) add(dir string, gs []group, frames bool) {
	var s summaryCounts
	for _, g := range gs {
		c := counter{int64(g.datagrams().Segments()), int64(g.datagrams().WireBytes())}
		for _, role := range l.v.portRoles {
			port := g.dst
			if role == roleSource {
				port = g.src
			}
			k := portKey{l.iface, dir, role, bucket(l.v.ports, port)}
			l.run[k] = l.run[k].add(c)
			l.last[k] = l.run[k]
			l.total[k] = l.total[k].add(c)
		}
		s.udpPackets += c.packets
		s.udpBytes += c.bytes
	}
	s.minBytes = s.udpBytes
	if frames {
		s.fragments, s.malformed, s.minOther = fragmentFrames, malformedFrames, otherFrames
		s.minBytes += rawBytes()
	}
	l.runSummary[dir] = l.runSummary[dir].add(s)
	l.totalSummary[dir] = l.totalSummary[dir].add(s)
}

// restart: a new plugin process counts from zero.
func (l *ledger) restart() {
	l.run = map[portKey]counter{}
	l.runSummary = map[string]summaryCounts{}
}

// ports returns the keys of one role (and direction, unless dir is ""),
// sorted.
func ports(m map[portKey]counter, dir, role string) []portKey {
	var keys []portKey
	for k := range m {
		if k.role == role && (dir == "" || k.dir == dir) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b portKey) int {
		return cmp.Or(strings.Compare(a.dir, b.dir), strings.Compare(a.port, b.port))
	})
	return keys
}

// topBytes returns the n keys of dir and role with the most bytes in m,
// most first.
func topBytes(m map[portKey]counter, dir, role string, n int) []portKey {
	keys := ports(m, dir, role)
	slices.SortStableFunc(keys, func(a, b portKey) int { return int(m[b].bytes - m[a].bytes) })
	if len(keys) > n {
		keys = keys[:n]
	}
	return keys
}

// bucket is the port tag of port under an allow-list ("other" if unlisted).
func bucket(allow []string, port int) string {
	if len(allow) == 0 {
		return strconv.Itoa(port)
	}
	for _, a := range allow {
		lo, hi, found := strings.Cut(a, "-")
		if !found {
			hi = lo
		}
		l, _ := strconv.Atoi(lo)
		h, _ := strconv.Atoi(hi)
		if port >= l && port <= h {
			return strconv.Itoa(port)
		}
	}
	return "other"
}

// datagrams is g as testnet sends it, to an address of g's family (the
// sizes depend on nothing else).
func (g group) datagrams() testnet.Datagrams {
	dst := net.IPv4(192, 0, 2, 2)
	if g.v6 {
		dst = net.ParseIP("2001:db8::2")
	}
	return testnet.Datagrams{Dst: dst, Port: g.dst, SrcPort: g.src, Count: g.count, Payload: g.payload, Segment: g.segment}
}

func equalPorts(got, want map[portKey]counter) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			return false
		}
	}
	return true
}

func diffPorts(got, want map[portKey]counter) string {
	var buf bytes.Buffer
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			fmt.Fprintf(&buf, "  %+v: missing, want %+v\n", k, w)
		case g != w:
			fmt.Fprintf(&buf, "  %+v: got %+v, want %+v\n", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&buf, "  %+v: unexpected %+v\n", k, g)
		}
	}
	return buf.String()
}

// checkSummaryFields checks the fields of one xdp_udp_ports_interface
// series (or of sums of their differences) against want. Fields not
// present (nil map entries) are not checked, except the invariant's.
func checkSummaryFields(f map[string]int64, want summaryCounts) error {
	var errs []string
	exact := map[string]int64{
		"udp_packets":       want.udpPackets,
		"udp_bytes":         want.udpBytes,
		"udp_fragments":     want.fragments,
		"malformed_packets": want.malformed,
	}
	if a, ok := f["attached"]; ok && a != 1 {
		errs = append(errs, fmt.Sprintf("attached = %d, want 1", a))
	}
	for name, w := range exact {
		if g, ok := f[name]; ok && g != w {
			errs = append(errs, fmt.Sprintf("%s = %d, want %d", name, g, w))
		}
	}
	if f["other_packets"] < want.minOther {
		errs = append(errs, fmt.Sprintf("other_packets = %d, want at least the %d frames sent", f["other_packets"], want.minOther))
	}
	if sum := f["udp_packets"] + f["udp_fragments"] + f["other_packets"] + f["malformed_packets"]; f["packets"] != sum {
		errs = append(errs, fmt.Sprintf("packets = %d, want udp_packets + udp_fragments + other_packets + malformed_packets = %d", f["packets"], sum))
	}
	if b, ok := f["bytes"]; ok && b < want.minBytes {
		errs = append(errs, fmt.Sprintf("bytes = %d, want at least the %d sent", b, want.minBytes))
	}
	if len(errs) > 0 {
		return fmt.Errorf("summary %v: %s", f, strings.Join(errs, "; "))
	}
	return nil
}
