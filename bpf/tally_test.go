package bpf_test

import (
	"fmt"
	"maps"
	"slices"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// tally is every counter of one loaded instance in a form expected and
// read values compare in directly.
type tally struct {
	Dst, Src           map[uint16]bpf.Counter // ports with packets > 0
	DstOther, SrcOther bpf.Counter            // ports outside an allow-list
	Summary            bpf.Summary
}

func newTally() tally {
	return tally{Dst: map[uint16]bpf.Counter{}, Src: map[uint16]bpf.Counter{}}
}

// tallyOf converts a snapshot.
func tallyOf(s *bpf.Snapshot) tally {
	t := newTally()
	for _, p := range s.Destination {
		t.Dst[p.Port] = p.Counter
	}
	for _, p := range s.Source {
		t.Src[p.Port] = p.Counter
	}
	t.DstOther, t.SrcOther, t.Summary = s.DestinationOther, s.SourceOther, s.Summary
	return t
}

// add counts one frame the way the README says an instance with layout l
// counts it.
func (t *tally) add(v verdict, l bpf.Layout) { t.addSegments(v, 1, l) }

// addSegments counts a packet that stands for n segments of v.Bytes bytes
// in all (one GSO packet at TC).
func (t *tally) addSegments(v verdict, n uint64, l bpf.Layout) {
	one := bpf.Counter{Packets: n, Bytes: v.Bytes}
	s := &t.Summary
	s.Packets += n
	s.Bytes += v.Bytes
	switch v.Class {
	case bpf.ClassFragment:
		s.UDPFragments += n
	case bpf.ClassOther:
		s.OtherPackets += n
	case bpf.ClassMalformed:
		s.MalformedPackets += n
	case bpf.ClassUDP:
		s.UDPPackets += n
		s.UDPBytes += v.Bytes
		addPort(t.Dst, &t.DstOther, v.Dst, one, l)
		if l.SrcBase != 0 {
			addPort(t.Src, &t.SrcOther, v.Src, one, l)
		}
	}
}

func addPort(ports map[uint16]bpf.Counter, other *bpf.Counter, port uint16, one bpf.Counter, l bpf.Layout) {
	if _, listed := slices.BinarySearch(l.Ports, port); !l.Dense() && !listed {
		*other = plus(*other, one)
		return
	}
	ports[port] = plus(ports[port], one)
}

// minus is t - o, counter by counter (o read before t).
func (t tally) minus(o tally) tally {
	d := newTally()
	sub := func(dst, a, b map[uint16]bpf.Counter) {
		for p, c := range a {
			if c != b[p] {
				dst[p] = bpf.Counter{Packets: c.Packets - b[p].Packets, Bytes: c.Bytes - b[p].Bytes}
			}
		}
	}
	sub(d.Dst, t.Dst, o.Dst)
	sub(d.Src, t.Src, o.Src)
	d.DstOther = bpf.Counter{Packets: t.DstOther.Packets - o.DstOther.Packets, Bytes: t.DstOther.Bytes - o.DstOther.Bytes}
	d.SrcOther = bpf.Counter{Packets: t.SrcOther.Packets - o.SrcOther.Packets, Bytes: t.SrcOther.Bytes - o.SrcOther.Bytes}
	a, b := t.Summary, o.Summary
	d.Summary = bpf.Summary{
		Packets: a.Packets - b.Packets, Bytes: a.Bytes - b.Bytes,
		UDPPackets: a.UDPPackets - b.UDPPackets, UDPBytes: a.UDPBytes - b.UDPBytes,
		UDPFragments: a.UDPFragments - b.UDPFragments, OtherPackets: a.OtherPackets - b.OtherPackets,
		MalformedPackets: a.MalformedPackets - b.MalformedPackets,
	}
	return d
}

// diff lists every counter where got differs from want, empty if none.
func (got tally) diff(want tally) []string {
	var out []string
	ports := func(role string, g, w map[uint16]bpf.Counter) {
		for _, p := range slices.Sorted(maps.Keys(union(g, w))) {
			if g[p] != w[p] {
				out = append(out, fmt.Sprintf("%s port %d: got %+v, want %+v", role, p, g[p], w[p]))
			}
		}
	}
	ports("destination", got.Dst, want.Dst)
	ports("source", got.Src, want.Src)
	if got.DstOther != want.DstOther {
		out = append(out, fmt.Sprintf("destination other: got %+v, want %+v", got.DstOther, want.DstOther))
	}
	if got.SrcOther != want.SrcOther {
		out = append(out, fmt.Sprintf("source other: got %+v, want %+v", got.SrcOther, want.SrcOther))
	}
	if got.Summary != want.Summary {
		out = append(out, fmt.Sprintf("summary: got %+v, want %+v", got.Summary, want.Summary))
	}
	return out
}

// describe says what a one-frame delta shows the program did.
func (d tally) describe() string {
	s := d.Summary
	switch {
	case s.Packets != 1:
		return fmt.Sprintf("%d frames counted: %+v", s.Packets, d)
	case s.UDPPackets == 1:
		return fmt.Sprintf("udp dst %v src %v (other: %+v/%+v), %d bytes", d.Dst, d.Src, d.DstOther, d.SrcOther, s.Bytes)
	case s.UDPFragments == 1:
		return fmt.Sprintf("fragment, %d bytes", s.Bytes)
	case s.OtherPackets == 1:
		return fmt.Sprintf("other, %d bytes", s.Bytes)
	case s.MalformedPackets == 1:
		return fmt.Sprintf("malformed, %d bytes", s.Bytes)
	}
	return fmt.Sprintf("%+v", d)
}

func union(a, b map[uint16]bpf.Counter) map[uint16]bpf.Counter {
	u := make(map[uint16]bpf.Counter, len(a)+len(b))
	maps.Copy(u, a)
	maps.Copy(u, b)
	return u
}

func plus(a, b bpf.Counter) bpf.Counter {
	return bpf.Counter{Packets: a.Packets + b.Packets, Bytes: a.Bytes + b.Bytes}
}
