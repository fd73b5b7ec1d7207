// Package bench holds the benchmarks of issue 6 and the driver of
// `make bench`: every figure is taken next to a baseline measured in the
// same run, because the machines it runs on are shared and noisy.
//
//  1. Per packet (packet_linux.go): BPF_PROG_TEST_RUN of the catalogue's
//     frames through our XDP program (source counting off and on, a ports
//     allow-list) and through hand-written baselines (progs_linux.go): a
//     bare XDP_PASS program, the floor, and the seed's approach (IPv4
//     only, a 64-entry hash keyed by destination port, atomic adds) with
//     and without a bpf_trace_printk per packet; and through our TC
//     program against a bare SCHED_CLS program returning TC_ACT_UNSPEC,
//     the TC floor.
//  2. Throughput (flood_linux.go): an AF_PACKET flood over a veth pair
//     between two namespaces with no program, the bare one and ours, at
//     native and generic XDP and at tcx ingress and egress; our counts must
//     equal what was sent. Do no harm (harm_linux.go): iperf3 TCP and UDP
//     over a veth with nothing attached, the plugin at its defaults plus
//     egress, and native XDP (bare and ours), on both ends of the veth.
//  3. Counter read (read_linux.go, plugin_linux.go): Snapshot and the
//     plugin's whole Gather against a naive BatchLookup of a dense per-CPU
//     array; and (limit_linux.go) the plugin's Gather with every port of
//     a scan active under the default max_ports, against no limit and one
//     active port.
//  4. Start and Stop of the plugin on 1, 10 and 100 veths at tcx (the
//     default on a veth), native XDP and legacy clsact filters
//     (startstop_linux.go) against attaching a bare program to as many at
//     the same hook.
//  5. Memory (memory_linux.go): the execd binary's RssAnon after Start and
//     the kernel memory of one interface's maps, dense and allow-list; the
//     allocations per Gather and the heap of the scan of part 3.
//
// TestTable (bench_test.go) runs them all at full size when
// XDP_UDP_PORTS_BENCH is set - `make bench`, as root - prints one table
// and writes BENCHMARKS.md. TestSmoke runs the same code with tiny counts
// under `go test ./...`: it asserts only that everything runs and that
// every count is exact. BenchmarkPacket and BenchmarkSnapshot give parts 1
// and 3 to benchstat.
package bench
