//go:build linux

package bench

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
)

// PacketFrames are the frames of part 1, by catalogue name.
var PacketFrames = []string{
	"ipv4-udp-64",
	"ipv4-udp-1500",
	"ipv6-hop-dest-udp",
	"vlan-qinq",
	"ipv4-frag-nonfirst",
	"tcp-64",
	"ipv4-udp-jumbo-9000",
}

// AllowListSize is how many ports the "ports" column lists.
const AllowListSize = 1000

// AllowList is the ports allow-list of the benchmarks: AllowListSize
// ports, 1…999 and 4789, so every UDP frame of the catalogue lands on a
// listed port (53, 123, 4789) and its source port (40000) on "other".
func AllowList() []uint16 {
	ports := make([]uint16, 0, AllowListSize)
	for p := uint16(1); len(ports) < AllowListSize-1; p++ {
		ports = append(ports, p)
	}
	return append(ports, frames.PortVXLAN)
}

// Kind is the hook a program of part 1 is made for: its test run, its
// return value and the floor it is measured against.
type Kind int

// Kinds of program.
const (
	KindXDP Kind = iota // BPF_PROG_TYPE_XDP: returns XDP_PASS
	KindTC              // BPF_PROG_TYPE_SCHED_CLS: returns TC_ACT_UNSPEC
	numKinds
)

var kindNames = [...]string{KindXDP: "XDP", KindTC: "TC"}

func (k Kind) String() string { return kindNames[k] }

// ret is what a program of kind k must return.
func (k Kind) ret() uint32 {
	if k == KindTC {
		return tcUnspec
	}
	return xdpPass
}

// Column is one program of part 1.
type Column struct {
	Name string
	Kind Kind
	// Bare is set on the bare program of Kind: every column of that kind
	// is measured against it.
	Bare bool
	// Ours is set for our program's columns: the counters of the instance
	// loaded for the current round.
	Ours *bpf.Counters
	ours bool
	cfg  bpf.Config
	// prog is the program that runs a frame; multi selects the xdp.frags
	// variant (nil when there is none).
	prog func(multi bool) *ebpf.Program
}

// PacketBench runs frames through programs with BPF_PROG_TEST_RUN.
type PacketBench struct {
	Base     *Baselines
	Cols     []*Column // bare XDP first
	Rows     []frames.Case
	Overhead [numKinds]time.Duration // fixed CPU cost of one test-run syscall, by kind, subtracted
	// Interrupted counts test runs a signal interrupted: cilium/ebpf
	// repeats them, so their frame was counted more often than asked.
	Interrupted int
	frags       bool
	loader      *bpf.Loader
}

// NewPacketBench loads the baselines, sets up our XDP program's columns in
// three configurations and our TC program's in the default one (Reload
// loads them) and measures the fixed cost of a test run of each kind.
func NewPacketBench(l *bpf.Loader) (*PacketBench, error) {
	base, err := LoadBaselines()
	if err != nil {
		return nil, err
	}
	pb := &PacketBench{Base: base, frags: l.FragsSupported(), loader: l}
	pb.Cols = append(pb.Cols, &Column{Name: "bare XDP_PASS", Bare: true, prog: func(multi bool) *ebpf.Program {
		if multi {
			return base.BareFrags
		}
		return base.Bare
	}})
	ours := []struct {
		name string
		cfg  bpf.Config
	}{
		{"ours", bpf.Config{}},
		{"ours +source", bpf.Config{CountSource: true}},
		{fmt.Sprintf("ours ports (%d)", AllowListSize), bpf.Config{Ports: AllowList()}},
	}
	for _, o := range ours {
		col := &Column{Name: o.name, ours: true, cfg: o.cfg}
		col.prog = func(multi bool) *ebpf.Program { return oursProgram(col.Ours, pb.frags)(multi) }
		pb.Cols = append(pb.Cols, col)
	}
	pb.Cols = append(pb.Cols,
		&Column{Name: "seed", prog: func(bool) *ebpf.Program { return base.Seed }},
		&Column{Name: "seed +printk", prog: func(bool) *ebpf.Program { return base.SeedPrint }},
		// A SCHED_CLS test run takes linear frames only: no multi-buffer.
		&Column{Name: "bare TC", Kind: KindTC, Bare: true, prog: func(multi bool) *ebpf.Program {
			if multi {
				return nil
			}
			return base.BareTC
		}},
	)
	tc := &Column{Name: "ours tc", Kind: KindTC, ours: true}
	tc.prog = func(multi bool) *ebpf.Program {
		if multi || tc.Ours == nil {
			return nil
		}
		p, err := tc.Ours.Program(bpf.TC)
		if err != nil {
			return nil
		}
		return p
	}
	pb.Cols = append(pb.Cols, tc)
	for _, name := range PacketFrames {
		c, ok := frames.Lookup(name)
		if !ok {
			pb.Close()
			return nil, fmt.Errorf("frame %q is not in the catalogue", name)
		}
		if c.Multi && !pb.frags {
			continue // the kernel cannot test-run multi-buffer frames
		}
		pb.Rows = append(pb.Rows, c)
	}
	if err := pb.calibrate(); err != nil {
		pb.Close()
		return nil, err
	}
	return pb, nil
}

func oursProgram(c *bpf.Counters, frags bool) func(bool) *ebpf.Program {
	return func(multi bool) *ebpf.Program {
		if c == nil {
			return nil
		}
		v := bpf.Plain
		if multi {
			if !frags {
				return nil
			}
			v = bpf.Frags
		}
		p, err := c.Program(v)
		if err != nil {
			return nil
		}
		return p
	}
}

// Reload loads a fresh instance of our program (and maps) for each of our
// columns, closing the previous one. Where the kernel puts an instance's
// JIT image and maps moves its cost by a few tenths of a ns (identical
// objects loaded twice differ by up to 0.7 ns, pinned to one CPU), so each
// round measures a new instance: the median then covers placement, the
// minimum is the best of them.
func (pb *PacketBench) Reload() error {
	for _, c := range pb.Cols {
		if !c.ours {
			continue
		}
		if c.Ours != nil {
			c.Ours.Close()
			c.Ours = nil
		}
		o, err := pb.loader.Load(c.cfg)
		if err != nil {
			return fmt.Errorf("loading our program (%s): %w", c.Name, err)
		}
		// Loaded now, not while measuring.
		var variants []bpf.Variant
		switch {
		case c.Kind == KindTC:
			variants = []bpf.Variant{bpf.TC}
		case pb.frags:
			variants = []bpf.Variant{bpf.Plain, bpf.Frags}
		default:
			variants = []bpf.Variant{bpf.Plain}
		}
		for _, v := range variants {
			if _, err := o.Program(v); err != nil {
				o.Close()
				return err
			}
		}
		c.Ours = o
	}
	return nil
}

// Close releases every program and map.
func (pb *PacketBench) Close() error {
	errs := []error{pb.Base.Close()}
	for _, c := range pb.Cols {
		if c.Ours != nil {
			errs = append(errs, c.Ours.Close())
			c.Ours = nil
		}
	}
	return errors.Join(errs...)
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_THREAD_CPUTIME_ID): %v", err))
	}
	return time.Duration(ts.Nano())
}

// calibrate measures the fixed CPU cost of one test-run syscall of each
// kind (setup, copying the frame in and out; for XDP switching the
// dispatcher, for TC building the skb): the least of five single runs of
// the kind's bare program.
func (pb *PacketBench) calibrate() error {
	f := frames.IPv4UDP(64, frames.PortEphemeral, frames.PortDNS)
	for k, prog := range [numKinds]*ebpf.Program{KindXDP: pb.Base.Bare, KindTC: pb.Base.BareTC} {
		best := time.Duration(1 << 62)
		for range 5 {
			d, _, _, err := pb.cpuTime(Kind(k), prog, f, 1)
			if err != nil {
				return err
			}
			best = min(best, d)
		}
		pb.Overhead[k] = best
	}
	return nil
}

// cpuTime runs prog repeat times on frame in one BPF_PROG_TEST_RUN and
// returns the CPU time this thread spent in it and the kernel's own
// (integer, truncated) ns per run. Signals are blocked on the thread
// meanwhile: a signal interrupts the test run (EINTR) after some runs,
// which cilium/ebpf then repeats in full, and the counts would be off by
// the runs before the signal. interrupted reports that it happened anyway.
func (pb *PacketBench) cpuTime(kind Kind, prog *ebpf.Program, frame []byte, repeat int) (used, per time.Duration, interrupted bool, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^all.Val[i]
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
		return 0, 0, false, fmt.Errorf("blocking signals: %w", err)
	}
	defer func() { _ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) }()
	start := threadCPU()
	ret, per, err := prog.Benchmark(frame, repeat, func() {
		start = threadCPU()
		interrupted = true
	})
	used = threadCPU() - start
	if err != nil {
		return 0, 0, interrupted, err
	}
	if ret != kind.ret() {
		return 0, 0, interrupted, fmt.Errorf("%s program returned %d, want %d", kind, int32(ret), int32(kind.ret()))
	}
	return used, per, interrupted, nil
}

// Cost runs prog, of kind, repeat times on frame and returns ns per
// packet: the thread's CPU time for the whole syscall less the kind's
// fixed overhead, divided by repeat. Unlike the kernel's figure it is not
// truncated to whole ns, and unlike wall time it leaves out other tasks
// that ran meanwhile.
func (pb *PacketBench) Cost(kind Kind, prog *ebpf.Program, frame []byte, repeat int) (perPacket float64, kernel time.Duration, err error) {
	used, kernel, interrupted, err := pb.cpuTime(kind, prog, frame, repeat)
	if interrupted {
		pb.Interrupted++
	}
	if err != nil {
		return 0, 0, err
	}
	return float64(used-pb.Overhead[kind]) / float64(repeat), kernel, nil
}

// PacketResult is part 1: Cost[row][col] and the kernel's figures.
type PacketResult struct {
	Repeat, Rounds int
	// CountErr is set when an instance of ours did not count exactly what
	// its round ran.
	CountErr error
	Rows     []frames.Case
	Cols     []string
	Base     []int      // Cols[j] is measured against Cols[Base[j]], the bare program of its kind
	Cost     [][]Sample // ns per packet, one per round
	Kernel   [][]Sample // the kernel's ns per run, one per round
	Sizes    []ProgSize // of the programs, bare first
}

// ProgSize is what the kernel says of a loaded program's size.
type ProgSize struct {
	Name     string
	Kind     Kind
	Xlated   int    // instructions after the verifier's rewrites
	Verified uint32 // instructions the verifier processed
	Jited    uint32 // bytes of machine code
}

func progSize(name string, kind Kind, p *ebpf.Program) (ProgSize, error) {
	info, err := p.Info()
	if err != nil {
		return ProgSize{}, err
	}
	s := ProgSize{Name: name, Kind: kind}
	insns, err := info.Instructions()
	if err != nil {
		return s, fmt.Errorf("%s: reading the translated instructions: %w", name, err)
	}
	s.Xlated = len(insns)
	s.Verified, _ = info.VerifiedInstructions()
	s.Jited, err = info.JitedSize()
	return s, err
}

// Sizes reports the size of the bare programs, our plain, xdp.frags and
// TC variants (default configuration) and the seed; the bare program of
// each kind comes first among its kind.
func (pb *PacketBench) Sizes() ([]ProgSize, error) {
	var out []ProgSize
	add := func(name string, kind Kind, p *ebpf.Program) error {
		if p == nil {
			return nil
		}
		s, err := progSize(name, kind, p)
		out = append(out, s)
		return err
	}
	ours, err := pb.loader.Load(bpf.Config{})
	if err != nil {
		return nil, err
	}
	defer ours.Close()
	plain, err := ours.Program(bpf.Plain)
	if err != nil {
		return nil, err
	}
	frags := oursProgram(ours, pb.frags)(true)
	tc, err := ours.Program(bpf.TC)
	if err != nil {
		return nil, err
	}
	for _, p := range []struct {
		name string
		kind Kind
		p    *ebpf.Program
	}{
		{"bare XDP_PASS", KindXDP, pb.Base.Bare}, {"ours (xdp)", KindXDP, plain}, {"ours (xdp.frags)", KindXDP, frags}, {"seed", KindXDP, pb.Base.Seed},
		{"bare TC", KindTC, pb.Base.BareTC}, {"ours (tc)", KindTC, tc},
	} {
		if err := add(p.name, p.kind, p.p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Run measures every (frame, program) cell rounds times with repeat runs
// each, interleaved (round by round) so that a noisy spell hits every cell
// alike; skip leaves cells out (nil: none). Each round has a fresh instance
// of our programs (Reload), whose counts must then be exact.
func (pb *PacketBench) Run(repeat, rounds int, skip func(row frames.Case, col *Column) bool) (*PacketResult, error) {
	r := &PacketResult{Repeat: repeat, Rounds: rounds, Rows: pb.Rows}
	for _, c := range pb.Cols {
		r.Cols = append(r.Cols, c.Name)
		r.Base = append(r.Base, slices.IndexFunc(pb.Cols, func(b *Column) bool { return b.Bare && b.Kind == c.Kind }))
	}
	r.Cost = make([][]Sample, len(pb.Rows))
	r.Kernel = make([][]Sample, len(pb.Rows))
	for i := range pb.Rows {
		r.Cost[i] = make([]Sample, len(pb.Cols))
		r.Kernel[i] = make([]Sample, len(pb.Cols))
	}
	var countErrs []error
	for round := range rounds {
		if err := pb.Reload(); err != nil {
			return nil, err
		}
		runs := make([]map[string]uint64, len(pb.Cols)) // by column: test runs of each frame
		for j := range runs {
			runs[j] = map[string]uint64{}
		}
		for i, row := range pb.Rows {
			for j, col := range pb.Cols {
				if skip != nil && skip(row, col) {
					continue
				}
				prog := col.prog(row.Multi)
				if prog == nil {
					continue
				}
				per, kernel, err := pb.Cost(col.Kind, prog, row.Frame, repeat)
				if err != nil {
					return nil, fmt.Errorf("%s on %s: %w", col.Name, row.Name, err)
				}
				r.Cost[i][j] = append(r.Cost[i][j], per)
				r.Kernel[i][j] = append(r.Kernel[i][j], float64(kernel))
				runs[j][row.Name] = uint64(repeat)
			}
		}
		if err := pb.CheckCounts(runs); err != nil {
			countErrs = append(countErrs, fmt.Errorf("round %d: %w", round+1, err))
		}
	}
	r.CountErr = errors.Join(countErrs...)
	return r, nil
}

// CheckCounts compares what each of our columns counted with what the
// README's rules give for every frame, run runs[column][frame] times
// each: exact packets and bytes per port, per class and in total. In a TC
// test run the frame is linear, without VLAN metadata or GSO fields, so
// the rules give the same as at XDP.
func (pb *PacketBench) CheckCounts(runs []map[string]uint64) error {
	var errs []error
	for j, col := range pb.Cols {
		if !col.ours {
			continue
		}
		var got bpf.Snapshot
		col.Ours.Snapshot(&got)
		want := expect(col.cfg, pb.Rows, runs[j])
		if err := compare(got, want); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", col.Name, err))
		}
	}
	return errors.Join(errs...)
}

// expect is the snapshot cfg's counters must show after each row's frame
// ran runs[row.Name] times.
func expect(cfg bpf.Config, rows []frames.Case, runs map[string]uint64) bpf.Snapshot {
	var s bpf.Snapshot
	dst, src := map[uint16]bpf.Counter{}, map[uint16]bpf.Counter{}
	listed := func(p uint16) bool { return len(cfg.Ports) == 0 || slices.Contains(cfg.Ports, p) }
	add := func(m map[uint16]bpf.Counter, other *bpf.Counter, port uint16, c bpf.Counter) {
		if !listed(port) {
			other.Packets += c.Packets
			other.Bytes += c.Bytes
			return
		}
		v := m[port]
		v.Packets += c.Packets
		v.Bytes += c.Bytes
		m[port] = v
	}
	for _, row := range rows {
		n := runs[row.Name]
		if n == 0 {
			continue
		}
		c := bpf.Counter{Packets: n, Bytes: n * uint64(len(row.Frame))}
		s.Summary.Packets += c.Packets
		s.Summary.Bytes += c.Bytes
		switch row.Class {
		case bpf.ClassUDP:
			s.Summary.UDPPackets += c.Packets
			s.Summary.UDPBytes += c.Bytes
			add(dst, &s.DestinationOther, row.Dst, c)
			if cfg.CountSource {
				add(src, &s.SourceOther, row.Src, c)
			}
		case bpf.ClassFragment:
			s.Summary.UDPFragments += c.Packets
		case bpf.ClassOther:
			s.Summary.OtherPackets += c.Packets
		case bpf.ClassMalformed:
			s.Summary.MalformedPackets += c.Packets
		}
	}
	for p, c := range dst {
		s.Destination = append(s.Destination, bpf.PortCount{Port: p, Counter: c})
	}
	for p, c := range src {
		s.Source = append(s.Source, bpf.PortCount{Port: p, Counter: c})
	}
	return s
}

func compare(got, want bpf.Snapshot) error {
	var errs []error
	if got.Summary != want.Summary {
		errs = append(errs, fmt.Errorf("summary %+v, want %+v", got.Summary, want.Summary))
	}
	if got.DestinationOther != want.DestinationOther || got.SourceOther != want.SourceOther {
		errs = append(errs, fmt.Errorf("other ports: destination %+v source %+v, want %+v %+v",
			got.DestinationOther, got.SourceOther, want.DestinationOther, want.SourceOther))
	}
	for _, role := range []struct {
		name      string
		got, want []bpf.PortCount
	}{{"destination", got.Destination, want.Destination}, {"source", got.Source, want.Source}} {
		byPort := func(s []bpf.PortCount) map[uint16]bpf.Counter {
			m := map[uint16]bpf.Counter{}
			for _, pc := range s {
				m[pc.Port] = pc.Counter
			}
			return m
		}
		g, w := byPort(role.got), byPort(role.want)
		if len(g) != len(w) {
			errs = append(errs, fmt.Errorf("%s ports %+v, want %+v", role.name, role.got, role.want))
			continue
		}
		for p, c := range w {
			if g[p] != c {
				errs = append(errs, fmt.Errorf("%s port %d: %+v, want %+v", role.name, p, g[p], c))
			}
		}
	}
	return errors.Join(errs...)
}

// Goals of part 1: ours / bare of its kind at most this, by column and
// frame.
var packetGoals = map[string]map[string]float64{
	"ours": {
		"ipv4-udp-64":       1.20,
		"ipv6-hop-dest-udp": 1.30,
		"vlan-qinq":         1.30,
	},
	"ours tc": {
		"ipv4-udp-64":       1.25,
		"ipv6-hop-dest-udp": 1.35,
		"vlan-qinq":         1.35,
	},
}

// Floor is the cost of the bare program in column base: the least of all
// its measurements. The bare programs never read the frame and the test
// run's loop does not touch it, so the floor is the same for every frame
// (the measurements agree to a few tenths of a ns); pooling them keeps one
// noisy cell from moving a row's ratios.
func (r *PacketResult) Floor(base int) float64 {
	floor := 0.0
	for i := range r.Rows {
		if b := r.Cost[i][base]; len(b) > 0 && (floor == 0 || b.Min() < floor) {
			floor = b.Min()
		}
	}
	return floor
}

// TableRows turns part 1 into table rows: every column of every frame
// against the floor of its kind.
func (r *PacketResult) TableRows() []Row {
	var rows []Row
	for i, f := range r.Rows {
		for j := range r.Cols {
			b := r.Base[j]
			s, bare := r.Cost[i][j], r.Cost[i][b]
			if b == j || len(s) == 0 || len(bare) == 0 {
				continue
			}
			floor := r.Floor(b)
			row := Row{
				Part:     "1 per packet",
				Case:     fmt.Sprintf("%s (%d B): %s", f.Name, len(f.Frame), r.Cols[j]),
				Value:    perPacket(s),
				Baseline: fmt.Sprintf("%.1f ns %s (this frame %.1f)", floor, r.Cols[b], bare.Min()),
				Ratio:    ratio(s.Min(), floor),
			}
			if g, ok := packetGoals[r.Cols[j]][f.Name]; ok {
				row.Goal = fmt.Sprintf("≤ %.2f×", g)
				row.Met = verdict(s.Min() <= g*floor)
			}
			rows = append(rows, row)
		}
	}
	size := func(s ProgSize) string {
		return fmt.Sprintf("%d insns, %d B JIT (verifier: %d processed)", s.Xlated, s.Jited, s.Verified)
	}
	var bare [numKinds]*ProgSize
	for i, s := range r.Sizes {
		if bare[s.Kind] == nil {
			bare[s.Kind] = &r.Sizes[i]
			continue
		}
		b := bare[s.Kind]
		rows = append(rows, Row{
			Part:     "1 per packet",
			Case:     "program size after the verifier: " + s.Name,
			Value:    size(s),
			Baseline: size(*b) + " " + b.Name,
			Ratio:    ratio(float64(s.Jited), float64(b.Jited)),
		})
	}
	return rows
}

func perPacket(s Sample) string {
	return fmt.Sprintf("%.1f ns (med %.1f)", s.Min(), s.Median())
}
