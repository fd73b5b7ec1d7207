//go:build linux

package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// Environment of the driver.
const (
	// envTable set (to anything) makes TestTable run: `make bench`.
	envTable = "XDP_UDP_PORTS_BENCH"
	// envOut is where TestTable writes BENCHMARKS.md (unset: nowhere).
	envOut = "XDP_UDP_PORTS_BENCH_OUT"
	// envCommand is the command line BENCHMARKS.md names.
	envCommand = "XDP_UDP_PORTS_BENCH_COMMAND"
	// envBin is the execd binary part 5 runs; built into a temporary
	// directory when unset.
	envBin = "XDP_UDP_PORTS_BIN"
	// envChildOut is where the child in the receiver namespace writes
	// its results for the parent.
	envChildOut = "XDP_UDP_PORTS_BENCH_CHILD_OUT"
)

// TestSmoke runs every benchmark with tiny counts under `go test`: it
// asserts that each runs and that every count is exact, never a speed.
func TestSmoke(t *testing.T) {
	tb := runAll(t, Smoke)
	if tb != nil && testing.Verbose() {
		if err := tb.Markdown(os.Stdout); err != nil {
			t.Error(err)
		}
	}
}

// TestTable is the driver of `make bench`: it runs every benchmark at full
// size, prints one table and writes it to BENCHMARKS.md.
func TestTable(t *testing.T) {
	if os.Getenv(envTable) == "" {
		t.Skip("the benchmark table runs with `make bench` (" + envTable + "=1)")
	}
	start, startLoad := time.Now(), LoadAverage()
	tb := runAll(t, Full)
	if tb == nil {
		return // the child in the receiver namespace
	}
	tb.Note("Whole run: %s.", time.Since(start).Round(time.Second))
	var out strings.Builder
	if err := tb.Markdown(&out); err != nil {
		t.Fatal(err)
	}
	fmt.Print("\n" + out.String())
	if failed := tb.Failed(); len(failed) > 0 {
		fmt.Printf("\n%d goal(s) not met.\n", len(failed))
	}
	if path := os.Getenv(envOut); path != "" {
		if err := os.WriteFile(path, []byte(document(out.String(), start, startLoad, tb.Failed())), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("wrote %s\n", path)
	}
}

func document(table string, date time.Time, startLoad string, failed []Row) string {
	cmd := os.Getenv(envCommand)
	if cmd == "" {
		cmd = "make bench"
	}
	return fmt.Sprintf(`# Benchmarks

Every figure is next to a baseline measured in the same run, on a shared
and noisy machine; see bench/ for how each is taken.

- Command: `+"`%s`"+` (as root)
- Machine: %s
- Date: %s
- Load average (1, 5, 15 min) at the start: %s; at the end: %s

%s%s`, cmd, Machine(), date.UTC().Format("2006-01-02 15:04 MST"), startLoad, LoadAverage(), table, missed(failed))
}

// missed lists the goals a run did not meet.
func missed(failed []Row) string {
	if len(failed) == 0 {
		return "\nEvery goal is met.\n"
	}
	var b strings.Builder
	b.WriteString("\n## Goals not met in this run\n\n")
	for _, r := range failed {
		fmt.Fprintf(&b, "- %s, %s: %s against %s = %s; goal %s.\n", r.Part, r.Case, r.Value, r.Baseline, r.Ratio, r.Goal)
	}
	return b.String()
}

// pluginResult is what the child in the receiver namespace measured.
type pluginResult struct {
	Gather    []GatherCase
	Limit     []LimitCase
	StartStop []StartStopCase
}

// runAll runs every part as a subtest and returns the table; nil in the
// child that RunInReceiver starts (it runs only the plugin parts and
// hands them to the parent through a file).
func runAll(t *testing.T, par Params) *Table {
	testnet.Require(t)
	top := t
	l, err := bpf.NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	var (
		tb    Table
		pr    *PacketResult
		rr    *ReadResult
		plug  pluginResult
		times []string
	)
	run := func(name string, f func(t *testing.T)) {
		start := time.Now()
		t.Run(name, f)
		times = append(times, fmt.Sprintf("%s %s", name, time.Since(start).Round(100*time.Millisecond)))
	}
	if !testnet.IsChild() {
		run("packet", func(t *testing.T) { pr = runPacket(t, l, par) })
		run("flood", func(t *testing.T) { tb.Add(runFlood(t, l, par)...) })
		run("harm", func(t *testing.T) {
			hr, err := RunHarm(t, binary(t, top), par.HarmRuns, par.HarmArgs)
			if err != nil {
				t.Fatal(err)
			}
			tb.Add(hr.TableRows()...)
			harmNote = fmt.Sprintf("%s, client %s", hr.Version, strings.Join(hr.Args, " "))
		})
		run("read", func(t *testing.T) {
			var err error
			if rr, err = RunRead(l, par.ReadCases, par.ReadReps); err != nil {
				t.Fatal(err)
			}
		})
	}
	run("plugin", func(t *testing.T) { plug = runPlugin(t, par) })
	if testnet.IsChild() {
		return nil
	}
	var bin []BinaryMemory
	var km []KernelMemory
	defer func() { tb.Note("Time per part: %s.", strings.Join(times, ", ")) }()
	run("memory", func(t *testing.T) {
		var err error
		if bin, err = RunBinaryMemory(t, binary(t, top), par.MemorySizes); err != nil {
			t.Error(err)
		}
		if km, err = RunKernelMemory(l); err != nil {
			t.Error(err)
		}
	})

	var packetRows []Row
	if pr != nil {
		packetRows = pr.TableRows()
	}
	tb.Rows = append(packetRows, tb.Rows...) // part 1 first
	if rr != nil {
		tb.Add(rr.TableRows()...)
		tb.Add(GatherRows(plug.Gather, rr.Naive)...)
	}
	limitRead, limitMemory := limitRows(plug.Limit)
	tb.Add(limitRead...)
	tb.Add(StartStopRows(plug.StartStop)...)
	tb.Add(BinaryStartRows(bin)...)
	tb.Add(MemoryRows(bin, km, pr)...)
	tb.Add(limitMemory...)
	notes(&tb, par, pr)
	return &tb
}

func runPacket(t *testing.T, l *bpf.Loader, par Params) *PacketResult {
	pb, err := NewPacketBench(l)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	skip := func(row frames.Case, col *Column) bool {
		if col.Name != "seed +printk" || par.PrintkFrames == nil {
			return false
		}
		for _, f := range par.PrintkFrames {
			if f == row.Name {
				return false
			}
		}
		return true
	}
	pr, err := pb.Run(par.Repeat, par.Rounds, skip)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Sizes, err = pb.Sizes(); err != nil {
		t.Error(err)
	}
	if pr.CountErr != nil {
		t.Errorf("counts after %d test runs per frame (%d test runs interrupted by a signal and repeated): %v",
			par.Repeat, pb.Interrupted, pr.CountErr)
	}
	return pr
}

func runFlood(t *testing.T, l *bpf.Loader, par Params) []Row {
	base, err := LoadBaselines()
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	fr, err := RunFlood(t, l, base, par.FloodPerConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, tot := range fr.Totals {
		if tot.Sent == 0 {
			t.Errorf("%s: nothing sent", tot.Config.Name)
		}
		if tot.Config.Ours && (tot.CountErr != nil || tot.Counted != tot.Sent) {
			t.Errorf("%s: counted %d of %d frames sent: %v", tot.Config.Name, tot.Counted, tot.Sent, tot.CountErr)
		}
	}
	floodNote = fmt.Sprintf("%d batches of %d frames per configuration; ksoftirqd used %s of CPU during the flood (not charged to any configuration)",
		fr.Batches, floodBatch, fr.SoftIRQ.Round(time.Millisecond))
	return fr.TableRows()
}

// runPlugin runs the plugin parts in a child inside the receiver
// namespace (every goroutine of the plugin must be there) and returns its
// results in the parent.
func runPlugin(t *testing.T, par Params) pluginResult {
	p := testnet.NewPair(t, testnet.Options{})
	var res pluginResult
	if !testnet.IsChild() {
		t.Setenv(envChildOut, filepath.Join(t.TempDir(), "plugin.json"))
	}
	if !p.RunInReceiver(t) {
		b, err := os.ReadFile(os.Getenv(envChildOut))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	var err error
	// Start/Stop first: the first Start of the process is a cold one, as
	// the execd binary's is.
	if res.StartStop, err = RunStartStop(t, p, par.StartStopSizes, par.StartStopReps); err != nil {
		t.Fatal(err)
	}
	if res.Gather, err = RunGather(t, p, par.GatherCases, par.GatherReps); err != nil {
		t.Fatal(err)
	}
	if res.Limit, err = RunGatherLimit(t, p, par.LimitActive, par.LimitReps); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(envChildOut), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return res
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary is the execd binary: $XDP_UDP_PORTS_BIN, or built once and
// removed when top (the test that runs every part needing it) ends.
func binary(t, top *testing.T) string {
	if b := os.Getenv(envBin); b != "" {
		return b
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "xdp_udp_ports-bench")
		if err != nil {
			buildErr = err
			return
		}
		top.Cleanup(func() {
			os.RemoveAll(dir)
			buildOnce = sync.Once{} // a later test (-count 2) builds it again
		})
		builtBin = filepath.Join(dir, "xdp_udp_ports")
		// The flags of `make build`, so that its build cache serves.
		cmd := exec.Command("go", "build", "-trimpath", "-o", builtBin, "github.com/xdp-udp-ports/xdp_udp_ports/cmd/xdp_udp_ports")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the binary: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// floodNote and harmNote are what part 2 adds to its notes.
var floodNote, harmNote string

// notes explains under the table how the figures were taken.
func notes(tb *Table, par Params, pr *PacketResult) {
	if pr != nil {
		tb.Note("Part 1: BPF_PROG_TEST_RUN, repeat %d, min (and median) of %d rounds, every cell of a round run in turn. "+
			"ns/packet is the calling thread's CPU time over the syscall, less its fixed cost measured with repeat 1, "+
			"divided by repeat: the kernel's own figure is whole ns, truncated. Each round loads new instances of our programs: "+
			"where the kernel places an instance moves its cost by a few tenths of a ns, so the median covers placement and the minimum is the best one. "+
			"The floor is the least of every measurement of the bare XDP_PASS program (it never reads the frame, so it costs the same on all; "+
			"the bare column per frame is shown beside it) and is mostly the test run's own loop.", par.Repeat, par.Rounds)
		tb.Note("Part 1, TC: SCHED_CLS test runs (the kernel builds one skb per syscall and runs the program repeat times on it), " +
			"our TC program (default configuration) against its own floor, the least of every measurement of a bare SCHED_CLS program that " +
			"returns TC_ACT_UNSPEC as ours does; the fixed cost of a TC test run is measured and subtracted apart from XDP's. " +
			"The test run takes linear frames only: not the 9000 B one.")
		tb.Note("Part 1: the 9000 B frame is multi-buffer: ours runs its xdp.frags variant against a bare xdp.frags program; "+
			"the seed has no frags variant and sees the first buffer only. The seed counts any IPv4/UDP (IHL×4 offset, no fragment check); "+
			"its +printk column runs on %s only (one 10M-run measurement takes ~3.5 s).", strings.Join(par.PrintkFrames, ", "))
	}
	tb.Note("Part 2, flood: one veth pair per configuration between two namespaces, all attached at once: at XDP or tcx ingress of the "+
		"receiving end, or at tcx egress of the sending end (where the frames pass before the qdisc), ours or the bare program of the hook "+
		"(XDP_PASS; SCHED_CLS returning TC_ACT_UNSPEC, at the head as ours); one thread in the sender namespace "+
		"sends AF_PACKET sendmmsg batches of 64 B IPv4/UDP frames (to %d ports, addressed to the receiving veth: up the whole stack) "+
		"to each veth in turn, through a pfifo qdisc, %s per configuration: %s. "+
		"kpps/CPU-s = frames / CPU time of the sending thread in that configuration's batches: on a veth the sending thread also runs "+
		"the receiver's NAPI or backlog, XDP and stack in softirq, so this is throughput per CPU whatever else the host runs; wall kpps "+
		"(frames / wall time of those batches) depends on how much CPU the host lets us have. The goal is judged on kpps/CPU-s.",
		len(FloodPorts), par.FloodPerConfig, floodNote)
	tb.Note("Part 2, iperf3 (do no harm): one veth per configuration between two new namespaces, all attached at once, on both ends "+
		"(the plugin as the execd binary in each namespace, so that every data segment and every ACK passes it at egress of one end and "+
		"ingress of the other); one iperf3 server; each client run (%s; UDP -b 0, as fast as it goes) measures what the server received; "+
		"%d runs of each configuration per protocol, alternating, each round starting with the next configuration, client on CPU 0 and server on CPU 1 (iperf3 -A 0,1). "+
		"Values are the median (min–max) of the runs; the ratio is the median (min–max) of each run's ratio to nothing attached in the same round. "+
		"On a shared 2-CPU VM single runs of one configuration differ by ±5 %% and more: as much as the goal's margin. "+
		"The goal holds the defaults (ingress_hook = \"auto\": TC on a veth, tcx here) to the median with nothing attached; "+
		"the native XDP rows are why the default on a veth is not XDP: there the kernel gives up GRO/GSO pass-through.", harmNote, par.HarmRuns)
	tb.Note("Part 3: Snapshot walks the mmap of the counter array (no syscalls), default dense layout, destination ports; " +
		"active ports are real counts (one test run per port). The naive read is one BatchLookup of a dense 65,536-entry per-CPU array.")
	tb.Note("Parts 3 (Gather) and 4 run the plugin in a child process inside the receiver namespace on veths made there; " +
		"Start must leave every interface attached and Stop every one detached. Part 5 runs the execd binary (-poll_interval_disabled) " +
		"and reads /proc/PID/status once it has attached everywhere, then again after one Gather (a line on its stdin); " +
		"the counter arrays it mmaps are file-backed (RssFile), not RssAnon.")
	tb.Note("Parts 3 and 5, series floods (issue 12): the plugin on one veth, one 64 B frame to each of %d ports (a scan), "+
		"Gathers until the counts settle and are exact (at most max_ports port series, the rest summed into port=\"other\"), "+
		"then %d timed Gathers into an accumulator that drops every metric, so that time and allocations (runtime.MemStats) are the plugin's own; "+
		"the heap is HeapAlloc after a GC with the plugin still running (the whole child process: compare with one active port).",
		par.LimitActive, par.LimitReps)
	tb.Note("Part 4: the plugin at each hook on a veth - tcx (the default there), native XDP, and legacy clsact filters (forced with " +
		legacyTCEnv + "=1, the path of kernels without tcx) - interleaved, each next to a bare program loaded and attached at the same hook " +
		"(XDP_PASS native; SCHED_CLS at the tcx head; a clsact qdisc and one direct-action filter per interface). On this kernel every tcx " +
		"attach and detach waits for an RCU grace period with rtnl held (kernel/bpf/tcx.c: tcx_entry_sync), so they run one after another, " +
		"about 10 ms each: the bare tcx rows show that cost alone. Native XDP pays one too for every distinct program attached or detached " +
		"(the kernel's XDP dispatcher is updated and synchronize_rcu()'d; 30 distinct bare programs took 13 ms each here): the bare baseline " +
		"attaches one program to all N and pays it once, the plugin loads one per interface (its counters are per interface) and pays it N times. " +
		"Legacy filters wait for no grace period.")
}

// BenchmarkPacket is part 1 for benchstat: ns/op is ns per packet.
func BenchmarkPacket(b *testing.B) {
	testnet.Require(b)
	l, err := bpf.NewLoader()
	if err != nil {
		b.Fatal(err)
	}
	pb, err := NewPacketBench(l)
	if err != nil {
		b.Fatal(err)
	}
	defer pb.Close()
	if err := pb.Reload(); err != nil {
		b.Fatal(err)
	}
	for _, row := range pb.Rows {
		for _, col := range pb.Cols {
			prog := col.prog(row.Multi)
			if prog == nil {
				continue
			}
			b.Run(row.Name+"/"+strings.ReplaceAll(col.Name, " ", "_"), func(b *testing.B) {
				per, _, err := pb.Cost(col.Kind, prog, row.Frame, b.N)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(per, "ns/op")
			})
		}
	}
}

// BenchmarkSnapshot is part 3 for benchstat.
func BenchmarkSnapshot(b *testing.B) {
	testnet.Require(b)
	l, err := bpf.NewLoader()
	if err != nil {
		b.Fatal(err)
	}
	for _, rc := range ReadCases {
		b.Run(strings.ReplaceAll(rc.String(), " ", "_"), func(b *testing.B) {
			s, _, err := snapshotCost(l, rc, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(s.Mean(), "ns/op")
		})
	}
	b.Run("naive_BatchLookup", func(b *testing.B) {
		s, err := naiveRead(l.CPUs(), b.N)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(s.Mean(), "ns/op")
	})
}
