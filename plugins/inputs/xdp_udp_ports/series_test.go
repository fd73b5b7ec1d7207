package xdp_udp_ports

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// series is one add call of emit.
type series struct {
	port string
	c    bpf.Counter
}

func (e series) String() string { return fmt.Sprintf("%s=%d/%d", e.port, e.c.Packets, e.c.Bytes) }

func pc(port uint16, packets, bytes uint64) bpf.PortCount {
	return bpf.PortCount{Port: port, Counter: bpf.Counter{Packets: packets, Bytes: bytes}}
}

func se(port string, packets, bytes uint64) series {
	return series{port, bpf.Counter{Packets: packets, Bytes: bytes}}
}

func collect(s *portSeries, ports []bpf.PortCount, other bpf.Counter) ([]series, emitReport) {
	var got []series
	r := s.emit(ports, other, func(port string, c bpf.Counter) { got = append(got, series{port, c}) })
	return got, r
}

// gather is one emit call and what it must do.
type gather struct {
	ports    []bpf.PortCount
	other    bpf.Counter
	want     []series // in order
	newSeats int
	limit    bool // limitReached
}

func runGathers(t *testing.T, s *portSeries, gathers []gather) {
	t.Helper()
	for i, g := range gathers {
		got, r := collect(s, g.ports, g.other)
		if !slices.Equal(got, g.want) {
			t.Errorf("gather %d: emitted %v, want %v", i, got, g.want)
		}
		if r.newSeats != g.newSeats || r.limitReached != g.limit {
			t.Errorf("gather %d: newSeats %d limitReached %v, want %d %v", i, r.newSeats, r.limitReached, g.newSeats, g.limit)
		}
	}
}

func TestPortSeriesEmit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxPorts int
		gathers  []gather
	}{{
		name:     "leading zero then value",
		maxPorts: 1000,
		gathers: []gather{
			{ports: nil, want: nil},
			{ports: []bpf.PortCount{pc(53, 10, 800)}, want: []series{se("53", 0, 0)}, newSeats: 1},
			{ports: []bpf.PortCount{pc(53, 1010, 80800)}, want: []series{se("53", 1010, 80800)}},
			{ports: []bpf.PortCount{pc(53, 1010, 80800), pc(123, 7, 560)},
				want: []series{se("53", 1010, 80800), se("123", 0, 0)}, newSeats: 1},
			{ports: []bpf.PortCount{pc(53, 1010, 80800), pc(123, 7, 560)},
				want: []series{se("53", 1010, 80800), se("123", 7, 560)}},
		},
	}, {
		name:     "entries without packets are no ports",
		maxPorts: 1,
		gathers: []gather{
			{ports: []bpf.PortCount{pc(1, 0, 0), pc(2, 5, 50)}, want: []series{se("2", 0, 0)}, newSeats: 1, limit: true},
			{ports: []bpf.PortCount{pc(1, 0, 0), pc(2, 5, 50)}, want: []series{se("2", 5, 50)}},
		},
	}, {
		name:     "ports 0 and 65535",
		maxPorts: 0,
		gathers: []gather{
			{ports: []bpf.PortCount{pc(0, 1, 60), pc(65535, 2, 120)}, want: []series{se("0", 0, 0), se("65535", 0, 0)}, newSeats: 2},
			{ports: []bpf.PortCount{pc(0, 1, 60), pc(65535, 2, 120)}, want: []series{se("0", 1, 60), se("65535", 2, 120)}},
		},
	}, {
		name:     "fills exactly, then other",
		maxPorts: 2,
		gathers: []gather{
			{ports: []bpf.PortCount{pc(10, 1, 100)}, want: []series{se("10", 0, 0)}, newSeats: 1},
			{ports: []bpf.PortCount{pc(10, 1, 100), pc(20, 1, 100)},
				want: []series{se("10", 1, 100), se("20", 0, 0)}, newSeats: 1, limit: true},
			// 5 arrives with the seats full: other, first as zero.
			{ports: []bpf.PortCount{pc(5, 9, 900), pc(10, 2, 200), pc(20, 1, 100)},
				want: []series{se("10", 2, 200), se("20", 1, 100), se("other", 0, 0)}},
			{ports: []bpf.PortCount{pc(5, 9, 900), pc(10, 2, 200), pc(20, 1, 100)},
				want: []series{se("10", 2, 200), se("20", 1, 100), se("other", 9, 900)}},
			// A second unseated port adds to other; seats stay full.
			{ports: []bpf.PortCount{pc(5, 9, 900), pc(10, 2, 200), pc(20, 1, 100), pc(30, 4, 400)},
				want: []series{se("10", 2, 200), se("20", 1, 100), se("other", 13, 1300)}},
		},
	}, {
		name:     "contest by packets, bytes, lower port",
		maxPorts: 3,
		gathers: []gather{
			{ports: []bpf.PortCount{pc(1, 5, 500), pc(2, 9, 100), pc(3, 5, 600), pc(4, 5, 600), pc(5, 1, 9000)},
				// 2 (9 packets); then 3 and 4 tie on 5/600, beating 1
				// (5/500) on bytes; the tie between 3 and 4 does not
				// matter here, 5 loses on packets.
				want: []series{se("2", 0, 0), se("3", 0, 0), se("4", 0, 0), se("other", 0, 0)}, newSeats: 3, limit: true},
			{ports: []bpf.PortCount{pc(1, 5, 500), pc(2, 9, 100), pc(3, 5, 600), pc(4, 5, 600), pc(5, 1, 9000)},
				want: []series{se("2", 9, 100), se("3", 5, 600), se("4", 5, 600), se("other", 6, 9500)}},
		},
	}, {
		name:     "contest tie goes to the lower port",
		maxPorts: 2,
		gathers: []gather{
			{ports: []bpf.PortCount{pc(7, 1, 1)}, want: []series{se("7", 0, 0)}, newSeats: 1},
			{ports: []bpf.PortCount{pc(7, 1, 1), pc(9, 3, 30), pc(40000, 3, 30), pc(41000, 3, 30)},
				want: []series{se("7", 1, 1), se("9", 0, 0), se("other", 0, 0)}, newSeats: 1, limit: true},
			// The losers stay in other even when they outgrow the winner.
			{ports: []bpf.PortCount{pc(7, 1, 1), pc(9, 3, 30), pc(40000, 300, 3000), pc(41000, 3, 30)},
				want: []series{se("7", 1, 1), se("9", 3, 30), se("other", 303, 3030)}},
		},
	}, {
		name:     "max_ports 0 is no limit",
		maxPorts: 0,
		gathers: []gather{
			{ports: []bpf.PortCount{pc(1, 1, 1), pc(2, 2, 2), pc(3, 3, 3)},
				want: []series{se("1", 0, 0), se("2", 0, 0), se("3", 0, 0)}, newSeats: 3},
			{ports: []bpf.PortCount{pc(1, 1, 1), pc(2, 2, 2), pc(3, 3, 3), pc(4, 4, 4)},
				want: []series{se("1", 1, 1), se("2", 2, 2), se("3", 3, 3), se("4", 0, 0)}, newSeats: 1},
		},
	}, {
		name:     "allow-list other merged, first as zero",
		maxPorts: 1,
		gathers: []gather{
			{ports: []bpf.PortCount{pc(53, 2, 200)}, other: bpf.Counter{Packets: 5, Bytes: 50},
				want: []series{se("53", 0, 0), se("other", 0, 0)}, newSeats: 1, limit: true},
			{ports: []bpf.PortCount{pc(53, 2, 200), pc(123, 1, 90)}, other: bpf.Counter{Packets: 6, Bytes: 60},
				want: []series{se("53", 2, 200), se("other", 7, 150)}},
		},
	}, {
		name:     "allow-list other without any port",
		maxPorts: 1000,
		gathers: []gather{
			{other: bpf.Counter{}, want: nil},
			{other: bpf.Counter{Packets: 1, Bytes: 64}, want: []series{se("other", 0, 0)}},
			{other: bpf.Counter{Packets: 3, Bytes: 192}, want: []series{se("other", 3, 192)}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			runGathers(t, newPortSeries(tc.maxPorts), tc.gathers)
		})
	}
}

// A UDP scan: 65,536 new ports at once under max_ports = 1000.
func TestPortSeriesScan(t *testing.T) {
	ports := make([]bpf.PortCount, portSpace)
	for p := range ports {
		// Ports 1000-1999 carry the most packets; every other one 1.
		n := uint64(1)
		if p >= 1000 && p < 2000 {
			n = 2
		}
		ports[p] = pc(uint16(p), n, 64*n)
	}
	s := newPortSeries(1000)
	got, r := collect(s, ports, bpf.Counter{})
	if len(got) != 1001 || r.newSeats != 1000 || !r.limitReached {
		t.Fatalf("first gather: %d series, report %+v; want 1001 series, 1000 seats, limit reached", len(got), r)
	}
	for i, e := range got[:1000] {
		if want := se(strconv.Itoa(1000+i), 0, 0); e != want {
			t.Fatalf("series %d = %v, want %v", i, e, want)
		}
	}
	got, r = collect(s, ports, bpf.Counter{})
	if want := se("other", 64536, 64536*64); len(got) != 1001 || got[1000] != want || r != (emitReport{}) {
		t.Fatalf("second gather: %d series, other %v, report %+v; want 1001, %v, nothing new", len(got), got[len(got)-1], r, want)
	}
	if got[0] != se("1000", 2, 128) {
		t.Errorf("second gather: first series %v", got[0])
	}
}

// Many new ports with ties, against a sort of them all.
func TestPortSeriesContestMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, maxPorts := range []int{1, 2, 3, 100, 1000, 30000} {
		var ports []bpf.PortCount
		for p := range portSpace {
			if rng.IntN(2) == 0 {
				n := uint64(1 + rng.IntN(4))
				ports = append(ports, pc(uint16(p), n, n*uint64(60+rng.IntN(4))))
			}
		}
		ranked := slices.Clone(ports)
		slices.SortFunc(ranked, func(a, b bpf.PortCount) int {
			if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
				return c
			}
			if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
				return c
			}
			return cmp.Compare(a.Port, b.Port)
		})
		var want []string
		for _, pc := range ranked[:maxPorts] {
			want = append(want, strconv.Itoa(int(pc.Port)))
		}
		got, _ := collect(newPortSeries(maxPorts), ports, bpf.Counter{})
		var gotPorts []string
		for _, e := range got[:len(got)-1] {
			gotPorts = append(gotPorts, e.port)
		}
		slices.Sort(want)
		slices.Sort(gotPorts)
		if !slices.Equal(gotPorts, want) {
			t.Errorf("max_ports %d: seats differ from the sorted ranking", maxPorts)
		}
	}
}

func TestPortSeriesLimitReportedOnce(t *testing.T) {
	s := newPortSeries(2)
	reports := 0
	ports := []bpf.PortCount{}
	for p := range uint16(10) {
		ports = append(ports, pc(p, 1, 1))
		if _, r := collect(s, ports, bpf.Counter{}); r.limitReached {
			reports++
			if p != 1 {
				t.Errorf("limit reported at port %d, want 1 (second seat)", p)
			}
		}
	}
	if reports != 1 {
		t.Errorf("limit reported %d times, want 1", reports)
	}
	// No limit, no report.
	s = newPortSeries(0)
	for range 3 {
		if _, r := collect(s, ports, bpf.Counter{}); r.limitReached {
			t.Error("limit reported with max_ports 0")
		}
	}
}

func TestPortSeriesMarshal(t *testing.T) {
	s := newPortSeries(3)
	// 65535 has the most packets, then the lower ports win: 4096 is
	// folded into other.
	collect(s, []bpf.PortCount{pc(0, 1, 1), pc(9, 1, 1), pc(4096, 1, 1), pc(65535, 2, 2)}, bpf.Counter{Packets: 1})
	b, err := s.MarshalBinary()
	if err != nil || len(b) != seriesStateSize || seriesStateSize != 8200 {
		t.Fatalf("MarshalBinary: %d bytes, %v; want %d (8200)", len(b), err, seriesStateSize)
	}
	// Layout: version, flags, bit p%8 of byte 8+p/8.
	wantHeader := []byte{1, 0, 0, 0, seriesFlagFolded | seriesFlagOther, 0, 0, 0}
	if !bytes.Equal(b[:8], wantHeader) {
		t.Errorf("header % x, want % x", b[:8], wantHeader)
	}
	for p := range portSpace {
		want := p == 0 || p == 9 || p == 65535
		if got := b[8+p/8]&(1<<(p%8)) != 0; got != want {
			t.Errorf("port %d: seat bit %v, want %v", p, got, want)
		}
	}
	r, err := restorePortSeries(3, b)
	if err != nil {
		t.Fatal(err)
	}
	if r.seats != s.seats || r.nSeats != 3 || !r.folded || !r.other {
		t.Errorf("restored %d seats folded=%v other=%v, want 3 true true", r.nSeats, r.folded, r.other)
	}
	if b2, _ := r.MarshalBinary(); !bytes.Equal(b, b2) {
		t.Error("marshal(unmarshal(b)) != b")
	}

	// A fresh one has a version, so it is not "nothing stored".
	b, _ = newPortSeries(0).MarshalBinary()
	if _, err := restorePortSeries(0, b); err != nil {
		t.Errorf("empty state: %v", err)
	}
}

func TestPortSeriesUnmarshalRejects(t *testing.T) {
	good, _ := adoptPortSeries(5, []bpf.PortCount{pc(53, 1, 1)}, bpf.Counter{}).MarshalBinary()
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	for _, tc := range []struct {
		name  string
		b     []byte
		empty bool // errNoSeriesState
	}{
		{"nil", nil, false},
		{"short", good[:len(good)-1], false},
		{"long", append(bytes.Clone(good), 0), false},
		{"all zero", make([]byte, seriesStateSize), true},
		{"version 0 with seats", mod(func(b []byte) { b[0] = 0 }), false},
		{"version 2", mod(func(b []byte) { b[0] = 2 }), false},
		{"unknown flag", mod(func(b []byte) { b[4] |= 4 }), false},
		{"high flag", mod(func(b []byte) { b[7] = 0x80 }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPortSeries(5)
			collect(s, []bpf.PortCount{pc(1, 1, 1)}, bpf.Counter{})
			before := *s
			err := s.UnmarshalBinary(tc.b)
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, errNoSeriesState) != tc.empty {
				t.Errorf("%v: errors.Is(errNoSeriesState) = %v, want %v", err, !tc.empty, tc.empty)
			}
			if *s != before {
				t.Error("state changed by a rejected value")
			}
			if _, err := restorePortSeries(5, tc.b); err == nil {
				t.Error("restorePortSeries accepted")
			}
		})
	}
}

// After a restart the series that exist go on with their values at once;
// new ports follow the normal rule.
func TestPortSeriesRestored(t *testing.T) {
	run1 := newPortSeries(2)
	runGathers(t, run1, []gather{
		{ports: []bpf.PortCount{pc(53, 1, 10)}, want: []series{se("53", 0, 0)}, newSeats: 1},
		{ports: []bpf.PortCount{pc(53, 2, 20)}, want: []series{se("53", 2, 20)}},
	})
	state, _ := run1.MarshalBinary()

	t.Run("free seat", func(t *testing.T) {
		s, err := restorePortSeries(2, state)
		if err != nil {
			t.Fatal(err)
		}
		runGathers(t, s, []gather{
			// 123 arrived while stopped: seat and leading zero. other
			// (allow-list) never had a series: leading zero.
			{ports: []bpf.PortCount{pc(53, 5, 50), pc(123, 3, 30)}, other: bpf.Counter{Packets: 1, Bytes: 1},
				want: []series{se("53", 5, 50), se("123", 0, 0), se("other", 0, 0)}, newSeats: 1, limit: true},
			{ports: []bpf.PortCount{pc(53, 5, 50), pc(123, 3, 30), pc(999, 1, 1)}, other: bpf.Counter{Packets: 1, Bytes: 1},
				want: []series{se("53", 5, 50), se("123", 3, 30), se("other", 2, 2)}},
		})
	})

	// Seats full and other existing before the restart.
	run1 = newPortSeries(1)
	collect(run1, []bpf.PortCount{pc(53, 1, 10), pc(54, 1, 10)}, bpf.Counter{})
	collect(run1, []bpf.PortCount{pc(53, 1, 10), pc(54, 1, 10)}, bpf.Counter{})
	state, _ = run1.MarshalBinary()
	t.Run("full", func(t *testing.T) {
		s, _ := restorePortSeries(1, state)
		runGathers(t, s, []gather{
			// The limit is reported again in the new process, once.
			{ports: []bpf.PortCount{pc(53, 2, 20), pc(54, 3, 30), pc(55, 1, 1)},
				want: []series{se("53", 2, 20), se("other", 4, 31)}, limit: true},
			{ports: []bpf.PortCount{pc(53, 2, 20), pc(54, 3, 30), pc(55, 1, 1)},
				want: []series{se("53", 2, 20), se("other", 4, 31)}},
		})
	})
	t.Run("max_ports raised after folding", func(t *testing.T) {
		// A port already counted in other must never leave it: no seat
		// even though maxPorts now allows more.
		s, _ := restorePortSeries(10, state)
		runGathers(t, s, []gather{
			{ports: []bpf.PortCount{pc(53, 2, 20), pc(54, 3, 30), pc(55, 1, 1)},
				want: []series{se("53", 2, 20), se("other", 4, 31)}, limit: true},
		})
	})
	t.Run("max_ports 0 after folding", func(t *testing.T) {
		s, _ := restorePortSeries(0, state)
		runGathers(t, s, []gather{
			{ports: []bpf.PortCount{pc(53, 2, 20), pc(54, 3, 30), pc(55, 1, 1)},
				want: []series{se("53", 2, 20), se("other", 4, 31)}, limit: true},
		})
	})
	t.Run("max_ports raised when full but nothing folded", func(t *testing.T) {
		full := newPortSeries(1)
		collect(full, []bpf.PortCount{pc(53, 1, 10)}, bpf.Counter{})
		st, _ := full.MarshalBinary()
		s, _ := restorePortSeries(2, st)
		runGathers(t, s, []gather{
			{ports: []bpf.PortCount{pc(53, 2, 20), pc(54, 3, 30)},
				want: []series{se("53", 2, 20), se("54", 0, 0)}, newSeats: 1, limit: true},
		})
	})
	t.Run("max_ports lowered keeps the seats", func(t *testing.T) {
		three := newPortSeries(0)
		collect(three, []bpf.PortCount{pc(1, 1, 1), pc(2, 1, 1), pc(3, 1, 1)}, bpf.Counter{})
		st, _ := three.MarshalBinary()
		s, _ := restorePortSeries(1, st)
		runGathers(t, s, []gather{
			{ports: []bpf.PortCount{pc(1, 1, 1), pc(2, 1, 1), pc(3, 1, 1), pc(4, 1, 1)},
				want: []series{se("1", 1, 1), se("2", 1, 1), se("3", 1, 1), se("other", 0, 0)}, limit: true},
		})
	})
}

// Counters adopted without stored seats: what has packets already has a
// series, so no leading zero for it.
func TestPortSeriesAdopted(t *testing.T) {
	ports := []bpf.PortCount{pc(53, 10, 100), pc(123, 0, 0), pc(5353, 4, 40)}
	for _, tc := range []struct {
		name     string
		maxPorts int
		other    bpf.Counter
		gathers  []gather
	}{{
		name:     "other with packets exists",
		maxPorts: 1000,
		other:    bpf.Counter{Packets: 2, Bytes: 2},
		gathers: []gather{
			{ports: []bpf.PortCount{pc(53, 11, 110), pc(5353, 4, 40), pc(9999, 1, 1)}, other: bpf.Counter{Packets: 2, Bytes: 2},
				want: []series{se("53", 11, 110), se("5353", 4, 40), se("9999", 0, 0), se("other", 2, 2)}, newSeats: 1},
		},
	}, {
		name:     "other without packets is new",
		maxPorts: 1000,
		gathers: []gather{
			{ports: []bpf.PortCount{pc(53, 11, 110), pc(5353, 4, 40)}, other: bpf.Counter{Packets: 1, Bytes: 1},
				want: []series{se("53", 11, 110), se("5353", 4, 40), se("other", 0, 0)}},
		},
	}, {
		name:     "more adopted ports than max_ports: all kept, seats full",
		maxPorts: 1,
		gathers: []gather{
			{ports: []bpf.PortCount{pc(53, 11, 110), pc(5353, 4, 40), pc(9999, 1, 1)},
				want: []series{se("53", 11, 110), se("5353", 4, 40), se("other", 0, 0)}, limit: true},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := adoptPortSeries(tc.maxPorts, ports, tc.other)
			if s.seated() != 2 {
				t.Errorf("%d seats, want 2", s.seated())
			}
			runGathers(t, s, tc.gathers)
		})
	}
}

func TestPortSeriesPortNames(t *testing.T) {
	names := portNames()
	for p := range portSpace {
		if names[p] != strconv.Itoa(p) {
			t.Fatalf("portNames[%d] = %q", p, names[p])
		}
	}
}

func TestPortSeriesSteadyStateAllocatesNothing(t *testing.T) {
	ports := scanPorts()
	for _, maxPorts := range []int{0, 1000} {
		s := newPortSeries(maxPorts)
		var sink uint64
		add := func(_ string, c bpf.Counter) { sink += c.Packets }
		s.emit(ports, bpf.Counter{}, add)
		if n := testing.AllocsPerRun(10, func() { s.emit(ports, bpf.Counter{}, add) }); n != 0 {
			t.Errorf("max_ports %d: %v allocations per emit, want 0", maxPorts, n)
		}
	}
}

// checkSeries drives portSeries with random non-decreasing kernel counters
// and random restarts (MarshalBinary, restorePortSeries) and checks every
// call against what the series must be:
//   - every series is non-decreasing across calls, other included;
//   - a series appears first with zero, then carries its exact value;
//   - a port has its own series from its first packets on, or is in other
//     for ever; seats never exceed max_ports; a port goes to other only when the
//     seats are full, and loses only to better ports (packets, bytes, port);
//   - sum of emitted values + true values of the series emitted as zero ==
//     sum of the kernel's counters (nothing lost, nothing counted twice).
func checkSeries(t *testing.T, rng *rand.Rand, maxPorts, universe, calls int) {
	t.Helper()
	portsOf := make([]uint16, universe)
	for i := range portsOf {
		portsOf[i] = uint16(rng.IntN(portSpace))
	}
	portsOf[0], portsOf[universe-1] = 0, 65535
	slices.Sort(portsOf)
	portsOf = slices.Compact(portsOf)

	kernel := map[uint16]bpf.Counter{}
	var kernelOther bpf.Counter
	last := map[string]bpf.Counter{} // every series ever emitted
	folded := map[uint16]bool{}
	s := newPortSeries(maxPorts)
	for call := range calls {
		if rng.IntN(8) == 0 {
			b, _ := s.MarshalBinary()
			var err error
			if s, err = restorePortSeries(maxPorts, b); err != nil {
				t.Fatal(err)
			}
		}
		// Some ports get packets, some more than others; ties happen.
		for _, p := range portsOf {
			if rng.IntN(4) == 0 {
				n := uint64(rng.IntN(3))
				c := kernel[p]
				c.Packets += n
				c.Bytes += n * uint64(60+rng.IntN(3))
				kernel[p] = c
			}
		}
		if rng.IntN(3) == 0 {
			kernelOther.Packets++
			kernelOther.Bytes += 100
		}
		var ports []bpf.PortCount
		var total bpf.Counter
		for _, p := range portsOf {
			if c := kernel[p]; c.Packets > 0 {
				ports = append(ports, bpf.PortCount{Port: p, Counter: c})
				total.Packets += c.Packets
				total.Bytes += c.Bytes
			}
		}
		total.Packets += kernelOther.Packets
		total.Bytes += kernelOther.Bytes

		got, _ := collect(s, ports, kernelOther)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("max_ports %d call %d: "+format+"\nports %v other %v\nemitted %v", append([]any{maxPorts, call}, append(args, ports, kernelOther, got)...)...)
		}
		emitted := map[string]bpf.Counter{}
		var sum bpf.Counter
		var zeroNew []uint16 // ports seated in this call
		otherFirst := false
		for _, e := range got {
			if _, dup := emitted[e.port]; dup {
				fail("%s emitted twice", e.port)
			}
			emitted[e.port] = e.c
			prev, seen := last[e.port]
			if e.c.Packets < prev.Packets || e.c.Bytes < prev.Bytes {
				fail("%s went down from %v to %v", e.port, prev, e.c)
			}
			if !seen && e.c != (bpf.Counter{}) {
				fail("new series %s starts at %v, not 0", e.port, e.c)
			}
			sum.Packets += e.c.Packets
			sum.Bytes += e.c.Bytes
			if e.port == portOther {
				otherFirst = !seen
				continue
			}
			p, err := strconv.Atoi(e.port)
			if err != nil || kernel[uint16(p)].Packets == 0 {
				fail("emitted %s, a port without packets", e.port)
			}
			if folded[uint16(p)] {
				fail("port %d left other", p)
			}
			if !seen {
				zeroNew = append(zeroNew, uint16(p))
				sum.Packets += kernel[uint16(p)].Packets
				sum.Bytes += kernel[uint16(p)].Bytes
			} else if e.c != kernel[uint16(p)] {
				fail("port %d emitted %v, kernel %v", p, e.c, kernel[uint16(p)])
			}
		}
		inOther := kernelOther
		var foldedNow []bpf.PortCount
		for _, pc := range ports {
			name := strconv.Itoa(int(pc.Port))
			if _, ok := emitted[name]; ok {
				continue
			}
			if _, had := last[name]; had {
				fail("port %d had a series and lost it", pc.Port)
			}
			if !folded[pc.Port] {
				foldedNow = append(foldedNow, pc)
				folded[pc.Port] = true
			}
			inOther.Packets += pc.Packets
			inOther.Bytes += pc.Bytes
		}
		if c, ok := emitted[portOther]; ok != (inOther.Packets > 0) {
			fail("other emitted %v, but holds %v", ok, inOther)
		} else if ok && !otherFirst && c != inOther {
			fail("other = %v, want %v", c, inOther)
		} else if otherFirst {
			sum.Packets += inOther.Packets
			sum.Bytes += inOther.Bytes
		}
		if sum != total {
			fail("emitted %v (with series emitted as 0 at their values), kernel %v", sum, total)
		}
		for name, c := range emitted {
			last[name] = c
		}
		seats := len(last)
		if _, ok := last[portOther]; ok {
			seats--
		}
		if maxPorts > 0 && seats > maxPorts {
			fail("%d seats, max_ports %d", seats, maxPorts)
		}
		if len(foldedNow) > 0 && (maxPorts == 0 || seats != maxPorts) {
			fail("ports %v folded into other with %d of %d seats taken", foldedNow, seats, maxPorts)
		}
		// New ports that lost a contest in this call lost to better ones.
		for _, w := range zeroNew {
			for _, l := range foldedNow {
				kw := kernel[w]
				if kw.Packets < l.Packets || (kw.Packets == l.Packets && (kw.Bytes < l.Bytes || (kw.Bytes == l.Bytes && w > l.Port))) {
					fail("port %d (%v) got a seat before %d (%v)", w, kw, l.Port, l.Counter)
				}
			}
		}
	}
}

func TestPortSeriesProperties(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 12))
		maxPorts := []int{0, 1, 2, 5, 20, 1000}[seed%6]
		checkSeries(t, rng, maxPorts, 2+rng.IntN(60), 30)
	}
}

func FuzzPortSeries(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(10))
	f.Add(uint64(2), uint8(0), uint8(50))
	f.Add(uint64(3), uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, seed uint64, maxPorts, universe uint8) {
		checkSeries(t, rand.New(rand.NewPCG(seed, 0)), int(maxPorts), 2+int(universe), 20)
	})
}

// scanPorts is every port with packets, as under a UDP scan.
func scanPorts() []bpf.PortCount {
	ports := make([]bpf.PortCount, portSpace)
	for p := range ports {
		ports[p] = pc(uint16(p), uint64(p%7+1), uint64(p%7+1)*64)
	}
	return ports
}

// Steady state under a UDP scan: 65,536 ports with packets at every Gather.
func BenchmarkPortSeriesScan(b *testing.B) {
	ports := scanPorts()
	for _, maxPorts := range []int{1000, 0} {
		b.Run("max_ports="+strconv.Itoa(maxPorts), func(b *testing.B) {
			s := newPortSeries(maxPorts)
			var sink uint64
			add := func(_ string, c bpf.Counter) { sink += c.Packets }
			s.emit(ports, bpf.Counter{}, add)
			b.ReportAllocs()
			for b.Loop() {
				s.emit(ports, bpf.Counter{}, add)
			}
		})
	}
}

// The first Gather of a UDP scan: 65,536 new ports compete for 1000 seats.
func BenchmarkPortSeriesScanFirstGather(b *testing.B) {
	ports := scanPorts()
	var sink uint64
	add := func(_ string, c bpf.Counter) { sink += c.Packets }
	b.ReportAllocs()
	for b.Loop() {
		newPortSeries(1000).emit(ports, bpf.Counter{}, add)
	}
}

// Port tags for 1000 emitted ports: the table against strconv.Itoa.
func BenchmarkPortSeriesPortTag(b *testing.B) {
	var sink int
	b.Run("table", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			names := portNames()
			for p := 30000; p < 31000; p++ {
				sink += len(names[p])
			}
		}
	})
	b.Run("itoa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for p := 30000; p < 31000; p++ {
				sink += len(strconv.Itoa(p))
			}
		}
	})
}
