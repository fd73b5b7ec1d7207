package bench

import "time"

// Params sizes a run: Full for `make bench`, Smoke for `go test`.
type Params struct {
	Name string

	// Part 1: BPF_PROG_TEST_RUN repeat per measurement, and how many
	// measurements (rounds) of each cell; PrintkFrames limits the seed
	// +printk column to these frames (nil: every frame).
	Repeat, Rounds int
	PrintkFrames   []string

	// Part 2: how long each configuration is flooded (all of them
	// interleaved batch by batch).
	FloodPerConfig time.Duration
	// Part 2, do no harm: iperf3 runs per configuration and protocol, and
	// the client's length arguments (-t seconds or -n bytes).
	HarmRuns int
	HarmArgs []string

	// Part 3.
	ReadCases   []ReadCase
	ReadReps    int
	GatherCases []ReadCase
	GatherReps  int

	// Parts 3 and 5, series floods: active ports of the scan, and timed
	// Gathers per case.
	LimitActive int
	LimitReps   int

	// Part 4.
	StartStopSizes []int
	StartStopReps  int

	// Part 5: interface counts the execd binary's memory is read at.
	MemorySizes []int
}

// Full is what `make bench` runs (under 5 minutes on 2 CPUs).
var Full = Params{
	Name:   "full",
	Repeat: 10_000_000,
	Rounds: 5,
	// 10M runs of the seed with printk take ~3.4 s; five rounds on every
	// frame would take two of the five minutes, so it runs on the frame
	// the goal is set for.
	PrintkFrames:   []string{"ipv4-udp-64"},
	FloodPerConfig: 10 * time.Second,
	HarmRuns:       5,
	HarmArgs:       []string{"-t", "3"},
	ReadCases:      ReadCases,
	ReadReps:       30,
	GatherCases:    ReadCases,
	GatherReps:     10,
	LimitActive:    65536,
	LimitReps:      10,
	StartStopSizes: []int{1, 10, 100},
	StartStopReps:  3,
	MemorySizes:    []int{1, 100},
}

// Smoke runs every part with tiny counts: it proves the benchmarks run
// and that every count is exact, not how fast anything is.
var Smoke = Params{
	Name:           "smoke",
	Repeat:         1000,
	Rounds:         1,
	PrintkFrames:   []string{"ipv4-udp-64"},
	FloodPerConfig: 100 * time.Millisecond,
	HarmRuns:       1,
	HarmArgs:       []string{"-n", "4M"},
	ReadCases:      []ReadCase{{0, 1}, {100, 1}, {100, 2}},
	ReadReps:       2,
	GatherCases:    []ReadCase{{0, 1}, {100, 2}},
	GatherReps:     2,
	LimitActive:    2000,
	LimitReps:      2,
	StartStopSizes: []int{1, 3},
	StartStopReps:  1,
	MemorySizes:    []int{1},
}
