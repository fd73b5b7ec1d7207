//go:build linux

package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
)

// ReadCase is one counter-read configuration of part 3: Ifaces interfaces
// (one loaded program and counter table each, the default dense layout)
// with Active destination ports counted on each.
type ReadCase struct {
	Active, Ifaces int
}

func (c ReadCase) String() string {
	if c.Ifaces == 1 {
		return fmt.Sprintf("1 interface, %d active ports", c.Active)
	}
	return fmt.Sprintf("%d interfaces × %d active ports", c.Ifaces, c.Active)
}

// ReadCases are the configurations of part 3.
var ReadCases = []ReadCase{{0, 1}, {100, 1}, {1000, 1}, {65536, 1}, {1000, 10}}

// Goals of part 3: at least this many times faster than the naive read.
var readGoals = map[ReadCase]float64{{1000, 1}: 10, {65536, 1}: 5}

// ReadResult is part 3: a snapshot of every interface of each case, and
// the naive baseline.
type ReadResult struct {
	CPUs     int
	Naive    Sample // one BatchLookup of a dense 65,536-entry per-CPU array
	Cases    []ReadCase
	Snapshot []Sample // ns to snapshot all interfaces of Cases[i]
	Ports    []int    // ports the last snapshot of Cases[i] returned
}

// RunRead measures reading the counters: Counters.Snapshot (a walk over
// the mmap of the counter array, no syscalls) against the naive read, a
// BatchLookup of a dense per-CPU array of 65,536 ports (one syscall that
// copies every CPU's value of every port). Active ports are made real:
// our program runs (BPF_PROG_TEST_RUN) on one IPv4/UDP frame to each.
func RunRead(l *bpf.Loader, cases []ReadCase, reps int) (*ReadResult, error) {
	r := &ReadResult{CPUs: l.CPUs(), Cases: cases}
	naive, err := naiveRead(l.CPUs(), reps)
	if err != nil {
		return nil, err
	}
	r.Naive = naive
	for _, rc := range cases {
		s, ports, err := snapshotCost(l, rc, reps)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rc, err)
		}
		r.Snapshot = append(r.Snapshot, s)
		r.Ports = append(r.Ports, ports)
	}
	return r, nil
}

// naiveRead times one BatchLookup of a whole dense per-CPU array.
func naiveRead(cpus, reps int) (Sample, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "bench_naive",
		Type:       ebpf.PerCPUArray,
		KeySize:    4,
		ValueSize:  16,
		MaxEntries: bpf.DensePortSlots,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the naive per-CPU array: %w", err)
	}
	defer m.Close()
	keys := make([]uint32, bpf.DensePortSlots)
	values := make([]bpf.Counter, bpf.DensePortSlots*cpus)
	var s Sample
	for range reps {
		var cursor ebpf.MapBatchCursor
		start := time.Now()
		n, err := m.BatchLookup(&cursor, keys, values, nil)
		d := time.Since(start)
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, fmt.Errorf("batch lookup: %w", err)
		}
		if n != bpf.DensePortSlots {
			return nil, fmt.Errorf("batch lookup returned %d entries, want %d", n, bpf.DensePortSlots)
		}
		s = append(s, nanos(d))
	}
	return s, nil
}

// activePorts spreads n ports over 0…65535.
func activePorts(n int) []uint16 {
	ports := make([]uint16, n)
	for i := range ports {
		ports[i] = uint16(i * bpf.DensePortSlots / n)
	}
	return ports
}

// populate counts one frame to each port with c's program.
func populate(c *bpf.Counters, ports []uint16) error {
	prog, err := c.Program(bpf.Plain)
	if err != nil {
		return err
	}
	for _, p := range ports {
		frame := frames.IPv4UDP(64, frames.PortEphemeral, p)
		if _, err := prog.Run(&ebpf.RunOptions{Data: frame}); err != nil {
			return fmt.Errorf("running the program: %w", err)
		}
	}
	return nil
}

func snapshotCost(l *bpf.Loader, rc ReadCase, reps int) (Sample, int, error) {
	cs := make([]*bpf.Counters, 0, rc.Ifaces)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	ports := activePorts(rc.Active)
	for range rc.Ifaces {
		c, err := l.Load(bpf.Config{})
		if err != nil {
			return nil, 0, err
		}
		cs = append(cs, c)
		if err := populate(c, ports); err != nil {
			return nil, 0, err
		}
	}
	snaps := make([]bpf.Snapshot, len(cs)) // reused, as a long-running reader would
	var s Sample
	for range reps {
		start := time.Now()
		for i, c := range cs {
			c.Snapshot(&snaps[i])
		}
		s = append(s, nanos(time.Since(start)))
	}
	for i := range snaps {
		if got := len(snaps[i].Destination); got != rc.Active {
			return nil, 0, fmt.Errorf("interface %d: snapshot has %d active ports, want %d", i, got, rc.Active)
		}
		if got := snaps[i].Summary.UDPPackets; got != uint64(rc.Active) {
			return nil, 0, fmt.Errorf("interface %d: %d UDP packets counted, want %d", i, got, rc.Active)
		}
	}
	return s, len(snaps[0].Destination), nil
}

// TableRows turns part 3 into table rows: each case against the naive
// read of as many interfaces.
func (r *ReadResult) TableRows() []Row {
	var rows []Row
	for i, rc := range r.Cases {
		naive := r.Naive.Min() * float64(rc.Ifaces)
		base := fmt.Sprintf("%s naive (%d CPUs)", dur(naive), r.CPUs)
		if rc.Ifaces > 1 {
			base = fmt.Sprintf("%d × %s naive", rc.Ifaces, dur(r.Naive.Min()))
		}
		row := Row{
			Part:     "3 counter read",
			Case:     "snapshot, " + rc.String(),
			Value:    minMed(r.Snapshot[i]),
			Baseline: base,
			Ratio:    faster(naive, r.Snapshot[i].Min()),
		}
		if g, ok := readGoals[rc]; ok {
			row.Goal = fmt.Sprintf("≥ %.0f× faster", g)
			row.Met = verdict(naive >= g*r.Snapshot[i].Min())
		}
		rows = append(rows, row)
	}
	return rows
}

// faster formats how many times faster than base ns something taking ns is
// (or slower, below 1).
func faster(base, ns float64) string {
	if ns >= base {
		return fmt.Sprintf("%.1f× slower", ns/base)
	}
	return fmt.Sprintf("%.1f× faster", base/ns)
}
