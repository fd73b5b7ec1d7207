//go:build linux

package bench

import (
	"fmt"
	"runtime"
)

// GatherRows puts the whole Gather next to the naive read (information:
// no goal; Telegraf's accumulator alone costs about 1 ms per 1,000
// metrics).
func GatherRows(gs []GatherCase, naive Sample) []Row {
	var rows []Row
	for _, g := range gs {
		base := naive.Min() * float64(g.Case.Ifaces)
		rows = append(rows, Row{
			Part:     "3 counter read",
			Case:     fmt.Sprintf("whole Gather + testutil.Accumulator, %s (%d metrics)", g.Case, g.Metrics+g.Case.Ifaces),
			Value:    minMed(g.Gather),
			Baseline: fmt.Sprintf("%s naive read", dur(base)),
			Ratio:    faster(base, g.Gather.Min()),
		})
	}
	return rows
}

// StartStopRows holds Start to 50 ms on one interface and 1 s on 100, and
// Stop to 1 s, at every hook, each next to attaching a bare program to as
// many at the same hook - plus twice what that bare program costs: at tcx
// (and at XDP, for distinct programs) every attach and detach waits for an
// RCU grace period holding rtnl, so N interfaces cost N grace periods
// whatever the plugin does (TestHundredInterfaces holds the same bound).
func StartStopRows(ss []StartStopCase) []Row {
	var rows []Row
	for _, s := range ss {
		start := Row{
			Part:     "4 start/stop",
			Case:     fmt.Sprintf("Start, %d interface(s), %s", s.N, s.Hook),
			Value:    minMed(s.Start),
			Baseline: minMed(s.BareUp) + " bare load+attach",
			Ratio:    ratio(s.Start.Median(), s.BareUp.Median()),
		}
		limit := map[int]float64{1: 50e6, 100: 1e9}
		if l, ok := limit[s.N]; ok {
			start.Goal = "≤ " + dur(l) + " + 2 × bare"
			start.Met = verdict(s.Start.Median() <= l+2*s.BareUp.Median())
		}
		stop := Row{
			Part:     "4 start/stop",
			Case:     fmt.Sprintf("Stop, %d interface(s), %s", s.N, s.Hook),
			Value:    minMed(s.Stop),
			Baseline: minMed(s.BareDown) + " bare detach",
			Ratio:    ratio(s.Stop.Median(), s.BareDown.Median()),
			Goal:     "≤ 1.00 s + 2 × bare",
			Met:      verdict(s.Stop.Median() <= 1e9+2*s.BareDown.Median()),
		}
		rows = append(rows, start, stop)
	}
	return rows
}

// BinaryStartRows: how long the execd binary takes from exec until it is
// attached everywhere (information: a cold process, Telegraf's shim and
// config parsing included).
func BinaryStartRows(bin []BinaryMemory) []Row {
	var rows []Row
	for _, b := range bin {
		if b.N == 0 {
			continue
		}
		rows = append(rows, Row{
			Part:  "4 start/stop",
			Case:  fmt.Sprintf("execd binary: exec until attached to %d interface(s)", b.N),
			Value: dur(nanos(b.Attached)),
		})
	}
	return rows
}

const mb = 1e6

// MemoryRows: the execd binary's RssAnon after Start next to the binary
// started with nothing to attach to; the kernel memory per interface and
// how it scales with CPUs; the allow-list's table size and per-packet cost.
func MemoryRows(bin []BinaryMemory, km []KernelMemory, pr *PacketResult) []Row {
	var rows []Row
	var idle ProcMemory
	for _, b := range bin {
		if b.N == 0 {
			idle = b.Mem
		}
	}
	for _, b := range bin {
		if b.N == 0 {
			continue
		}
		for _, m := range []struct {
			when string
			mem  ProcMemory
		}{{"after Start", b.Mem}, {"after Start and one Gather", b.AfterGather}} {
			rows = append(rows, Row{
				Part:     "5 memory",
				Case:     fmt.Sprintf("execd binary RssAnon %s, %d interface(s) (RssFile %.1f MB)", m.when, b.N, float64(m.mem.RssFile)/mb),
				Value:    fmt.Sprintf("%.1f MB", float64(m.mem.RssAnon)/mb),
				Baseline: fmt.Sprintf("%.1f MB, nothing attached", float64(idle.RssAnon)/mb),
				Ratio:    ratio(float64(m.mem.RssAnon), float64(idle.RssAnon)),
				Goal:     "≤ 40 MB",
				Met:      verdict(m.mem.RssAnon <= 40*mb),
			})
		}
	}
	var dense KernelMemory
	for _, k := range km {
		if k.Cfg.Ports == nil {
			dense = k
		}
	}
	for _, k := range km {
		est := k.Layout.KernelMemory()
		rows = append(rows, Row{
			Part: "5 memory",
			Case: fmt.Sprintf("kernel memory per interface, %s, %d CPUs: memlock of its maps (layout: %s)",
				k.Name, k.Layout.CPUs, bytesIEC(float64(est))),
			Value:    bytesIEC(float64(k.Measured)),
			Baseline: bytesIEC(float64(dense.Measured)) + " dense",
			Ratio:    ratio(float64(k.Measured), float64(dense.Measured)),
		}, Row{
			Part:     "5 memory",
			Case:     fmt.Sprintf("kernel memory per interface, %s, 128 CPUs (layout)", k.Name),
			Value:    bytesIEC(float64(k.At(128))),
			Baseline: bytesIEC(float64(dense.At(128))) + " dense",
			Ratio:    ratio(float64(k.At(128)), float64(dense.At(128))),
		})
		if k.Cfg.Ports != nil {
			rows = append(rows, Row{
				Part:     "5 memory",
				Case:     fmt.Sprintf("counter table per CPU, %s (+128 KiB port→slot table shared by all CPUs)", k.Name),
				Value:    bytesIEC(float64(k.PerCPU())),
				Baseline: bytesIEC(float64(dense.PerCPU())) + " dense",
				Ratio:    ratio(float64(k.PerCPU()), float64(dense.PerCPU())),
				Goal:     "≤ 32.0 KiB",
				Met:      verdict(k.PerCPU() <= 32<<10),
			})
		}
	}
	if pr != nil {
		if row, ok := allowListCost(pr); ok {
			rows = append(rows, row)
		}
	}
	return rows
}

// allowListCost is the allow-list's extra cost per packet on the 64-byte
// IPv4/UDP frame, from part 1.
func allowListCost(pr *PacketResult) (Row, bool) {
	col := func(name string) int {
		for j, c := range pr.Cols {
			if c == name {
				return j
			}
		}
		return -1
	}
	dense, list := col("ours"), col(fmt.Sprintf("ours ports (%d)", AllowListSize))
	for i, f := range pr.Rows {
		if f.Name != "ipv4-udp-64" || dense < 0 || list < 0 {
			continue
		}
		d, l := pr.Cost[i][dense], pr.Cost[i][list]
		if len(d) == 0 || len(l) == 0 {
			return Row{}, false
		}
		extra := l.Min() - d.Min()
		return Row{
			Part:     "5 memory",
			Case:     fmt.Sprintf("allow-list (%d ports) cost per packet, ipv4-udp-64", AllowListSize),
			Value:    perPacket(l),
			Baseline: perPacket(d) + " dense",
			Ratio:    fmt.Sprintf("%+.1f ns", extra),
			Goal:     "≤ +1.0 ns",
			Met:      verdict(extra <= 1),
		}, true
	}
	return Row{}, false
}

// Machine describes the host for BENCHMARKS.md.
func Machine() string {
	return fmt.Sprintf("%s, %d CPUs, Linux %s, %s", cpuModel(), runtime.NumCPU(), kernelRelease(), runtime.Version())
}
