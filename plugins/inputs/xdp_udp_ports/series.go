package xdp_udp_ports

// Which ports get a series of their own under max_ports, and the "first
// packets count" rule: README, "Series and cardinality".

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"sync"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// portOther is the port tag of the series that sums the ports without a
// seat and the kernel's own other slot (ports outside the allow-list).
const portOther = "other"

// portSpace is the number of UDP ports, 0 to 65535.
const portSpace = bpf.DensePortSlots

// Binary encoding of a portSeries (MarshalBinary), kept per (interface,
// direction, role) in a pinned map so that seats survive a restart with
// pin_path:
//
//	bytes 0-3   version, uint32 little endian (seriesStateVersion)
//	bytes 4-7   flags, uint32 little endian (seriesFlag*)
//	bytes 8-    seats: port p is seated iff bit p%8 of byte 8+p/8 is set
//
// An all-zero value (an array map entry never written) decodes to
// errNoSeriesState.
const (
	seriesStateVersion = 1
	seriesStateHeader  = 8
	// seriesStateSize is the length of the encoding, 8,200 bytes: use it as
	// the pinned map's value size.
	seriesStateSize = seriesStateHeader + portSpace/8
)

const (
	// seriesFlagFolded: a port with packets was summed into other because
	// the seats were full. No port is seated after that, whatever max_ports
	// says later, so other never loses a port it already counts.
	seriesFlagFolded = 1 << iota
	// seriesFlagOther: the other series exists (it was emitted).
	seriesFlagOther

	seriesFlagsKnown = seriesFlagFolded | seriesFlagOther
)

// errNoSeriesState is what UnmarshalBinary returns for an all-zero value:
// nothing was ever stored there.
var errNoSeriesState = errors.New("no stored port series state")

// seatMap is a set of ports, one bit each.
type seatMap [portSpace / 64]uint64

func (m *seatMap) has(p uint16) bool { return m[p>>6]&(1<<(p&63)) != 0 }
func (m *seatMap) set(p uint16)      { m[p>>6] |= 1 << (p & 63) }

func (m *seatMap) count() int {
	n := 0
	for _, w := range m {
		n += bits.OnesCount64(w)
	}
	return n
}

// portSeries decides, for one (interface, direction, port role), which
// ports are emitted as a series of their own ("seated") and which are summed
// into port="other", under a limit of max seats (max_ports; 0 = no limit):
//
//   - A port gets a seat the first time it has packets, if a seat is free.
//     When more new ports than free seats appear in one call, seats go by
//     packets (desc), then bytes (desc), then the lower port.
//   - Seats are never taken back, and once a port has been summed into
//     other no port gets a seat any more: every series, other included, is
//     a non-decreasing counter as long as the kernel's counters are.
//   - A series that did not exist before is emitted first with a zero
//     counter and with its value from the next call on, so difference-based
//     queries see its first packets. A port that just got its seat, and
//     other the first time it has packets, are such series.
//
// Not safe for concurrent use; one per set of kernel counters, for as long
// as those counters live (a new one when they restart from zero).
type portSeries struct {
	max    int
	seats  seatMap
	nSeats int
	folded bool // seriesFlagFolded
	other  bool // seriesFlagOther
	warned bool // limit reported (in this process; not stored)
}

// newPortSeries returns a portSeries for counters that start at zero in this
// process: no seats, no other series, at most maxPorts seats (0 = no limit;
// < 0 is taken as 0).
func newPortSeries(maxPorts int) *portSeries {
	return &portSeries{max: max(maxPorts, 0)}
}

// adoptPortSeries returns a portSeries for counters adopted from an earlier
// run whose seats are unknown: every port that has packets now already has a
// series, and so has other if kernelOther has packets. Those are emitted with
// their values at once, never with a leading zero that would look like a
// reset. Every port with packets is seated even beyond maxPorts (their
// series exist and are kept); the seats are then full.
func adoptPortSeries(maxPorts int, ports []bpf.PortCount, kernelOther bpf.Counter) *portSeries {
	s := newPortSeries(maxPorts)
	for _, pc := range ports {
		if pc.Packets > 0 && !s.seats.has(pc.Port) {
			s.seats.set(pc.Port)
			s.nSeats++
		}
	}
	s.other = kernelOther.Packets > 0
	return s
}

// restorePortSeries returns the portSeries stored by MarshalBinary in an
// earlier run, under the current maxPorts. Its seated ports, and other if it had a
// series, are emitted with their values at once. It returns an error wrapping
// errNoSeriesState for an all-zero value.
func restorePortSeries(maxPorts int, state []byte) (*portSeries, error) {
	s := newPortSeries(maxPorts)
	if err := s.UnmarshalBinary(state); err != nil {
		return nil, err
	}
	return s, nil
}

// full reports whether no port can get a seat any more.
func (s *portSeries) full() bool {
	return s.folded || (s.max > 0 && s.nSeats >= s.max)
}

// seated returns the number of seats taken.
func (s *portSeries) seated() int { return s.nSeats }

// emitReport says what one emit call changed.
type emitReport struct {
	// newSeats is how many ports got a seat (and were emitted as zero).
	newSeats int
	// limitReached is true in the first call of this portSeries in which
	// the seats are full, i.e. no new port gets a seat any more: log one
	// warning for its interface, direction and role. After a restore or an
	// adoption with full seats, that is the first call (also with max 0
	// when the restored state had ports folded into other).
	limitReached bool
	// changed is true when the state MarshalBinary encodes changed: write
	// it to the pinned map.
	changed bool
}

// emit calls add once for every series of one Gather, in the order of ports:
// each seated port with its counter (port tag in decimal), each port that
// gets its seat now with a zero counter; and last other, the sum of
// kernelOther and of the ports with packets and no seat, when it has packets
// (zero the first time).
//
// ports are the ports with packets > 0, ascending, as the kernel counts them
// (bpf.Snapshot.Destination or Source; entries with zero packets are
// ignored); kernelOther is the kernel's other slot (DestinationOther or
// SourceOther). It does not allocate, except for the one call in which more
// new ports than free seats compete for them.
func (s *portSeries) emit(ports []bpf.PortCount, kernelOther bpf.Counter, add func(port string, c bpf.Counter)) emitReport {
	var r emitReport
	var won *seatMap // ports seated by the contest in this call
	if !s.full() && s.max > 0 {
		if free := s.max - s.nSeats; s.countNew(ports, free+1) > free {
			won = s.contest(ports, free)
			r.newSeats, r.changed = free, true
		}
	}
	names := portNames()
	other := kernelOther
	for _, pc := range ports {
		switch {
		case pc.Packets == 0:
		case s.seats.has(pc.Port):
			if won != nil && won.has(pc.Port) {
				add(names[pc.Port], bpf.Counter{})
			} else {
				add(names[pc.Port], pc.Counter)
			}
		case !s.full():
			// countNew made sure every new port fits.
			s.seats.set(pc.Port)
			s.nSeats++
			r.newSeats++
			r.changed = true
			add(names[pc.Port], bpf.Counter{})
		default:
			if !s.folded {
				s.folded, r.changed = true, true
			}
			other.Packets += pc.Packets
			other.Bytes += pc.Bytes
		}
	}
	if other.Packets > 0 {
		if s.other {
			add(portOther, other)
		} else {
			s.other, r.changed = true, true
			add(portOther, bpf.Counter{})
		}
	}
	if s.full() && !s.warned {
		s.warned, r.limitReached = true, true
	}
	return r
}

// countNew counts the ports with packets and no seat, up to limit.
func (s *portSeries) countNew(ports []bpf.PortCount, limit int) int {
	n := 0
	for _, pc := range ports {
		if pc.Packets > 0 && !s.seats.has(pc.Port) {
			if n++; n >= limit {
				break
			}
		}
	}
	return n
}

// contest seats the free best new ports: by packets, then bytes (both
// descending), then the lower port. It returns the ports it seated. It runs at
// most once in a portSeries' life: the seats are full after it.
func (s *portSeries) contest(ports []bpf.PortCount, free int) *seatMap {
	// best holds the best ports so far as a heap whose root is the worst
	// of them: O(n log free) and free entries, where a sort would take
	// every new port.
	best := make([]bpf.PortCount, 0, free)
	for _, pc := range ports {
		switch {
		case pc.Packets == 0 || s.seats.has(pc.Port):
		case len(best) < free:
			best = append(best, pc)
			siftUp(best, len(best)-1)
		case seatsBefore(pc, best[0]):
			best[0] = pc
			siftDown(best, 0)
		}
	}
	won := new(seatMap)
	for _, pc := range best {
		won.set(pc.Port)
		s.seats.set(pc.Port)
	}
	s.nSeats += len(best)
	return won
}

// seatsBefore reports whether a gets a seat before b.
func seatsBefore(a, b bpf.PortCount) bool {
	if a.Packets != b.Packets {
		return a.Packets > b.Packets
	}
	if a.Bytes != b.Bytes {
		return a.Bytes > b.Bytes
	}
	return a.Port < b.Port
}

// siftUp and siftDown keep h a heap in which every parent comes after its
// children in seat order (the root is the last).
func siftUp(h []bpf.PortCount, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !seatsBefore(h[parent], h[i]) {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func siftDown(h []bpf.PortCount, i int) {
	for {
		last := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(h) && seatsBefore(h[last], h[c]) {
				last = c
			}
		}
		if last == i {
			return
		}
		h[i], h[last] = h[last], h[i]
		i = last
	}
}

// MarshalBinary encodes the seats and flags in seriesStateSize bytes (see
// seriesStateVersion). It never fails; it implements
// encoding.BinaryMarshaler, so a *portSeries can be given to
// ebpf.Map.Put/Update as the value.
func (s *portSeries) MarshalBinary() ([]byte, error) {
	b := make([]byte, seriesStateSize)
	binary.LittleEndian.PutUint32(b[0:], seriesStateVersion)
	var flags uint32
	if s.folded {
		flags |= seriesFlagFolded
	}
	if s.other {
		flags |= seriesFlagOther
	}
	binary.LittleEndian.PutUint32(b[4:], flags)
	for i, w := range s.seats {
		binary.LittleEndian.PutUint64(b[seriesStateHeader+8*i:], w)
	}
	return b, nil
}

// UnmarshalBinary replaces the seats and flags with those MarshalBinary
// encoded; max stays. It implements encoding.BinaryUnmarshaler (a
// *portSeries can be given to ebpf.Map.Lookup). An all-zero value returns an
// error wrapping errNoSeriesState; on any error s is unchanged.
func (s *portSeries) UnmarshalBinary(b []byte) error {
	if len(b) != seriesStateSize {
		return fmt.Errorf("port series state: %d bytes, want %d", len(b), seriesStateSize)
	}
	version := binary.LittleEndian.Uint32(b[0:])
	flags := binary.LittleEndian.Uint32(b[4:])
	var seats seatMap
	for i := range seats {
		seats[i] = binary.LittleEndian.Uint64(b[seriesStateHeader+8*i:])
	}
	n := seats.count()
	switch {
	case version == 0 && flags == 0 && n == 0:
		return fmt.Errorf("port series state: %w", errNoSeriesState)
	case version != seriesStateVersion:
		return fmt.Errorf("port series state: version %d, want %d", version, seriesStateVersion)
	case flags&^seriesFlagsKnown != 0:
		return fmt.Errorf("port series state: unknown flags %#x", flags&^seriesFlagsKnown)
	}
	s.seats, s.nSeats = seats, n
	s.folded = flags&seriesFlagFolded != 0
	s.other = flags&seriesFlagOther != 0
	return nil
}

// portNames returns the decimal tag of every port, built once per process
// on first use (one string of 316,570 bytes and 1 MiB of string headers), so
// that emitting 65,536 ports allocates nothing.
var portNames = sync.OnceValue(func() *[portSpace]string {
	var digits []byte
	for p := range portSpace {
		digits = strconv.AppendInt(digits, int64(p), 10)
	}
	all := string(digits)
	names := new([portSpace]string)
	off := 0
	for p := range portSpace {
		n := decimalLen(p)
		names[p] = all[off : off+n]
		off += n
	}
	return names
})

func decimalLen(p int) int {
	n := 1
	for ; p >= 10; p /= 10 {
		n++
	}
	return n
}
