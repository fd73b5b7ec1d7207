//go:build linux

package bench

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/testutil"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	plugin "github.com/xdp-udp-ports/xdp_udp_ports/plugins/inputs/xdp_udp_ports"
)

// defaultMaxPorts is max_ports left unset.
var defaultMaxPorts = plugin.New().MaxPorts

// LimitCase is the plugin on one interface with Active ports counted
// (one 64-byte frame each), under MaxPorts: what one Gather costs the
// plugin, and its heap (issue 12, series floods).
type LimitCase struct {
	Active, MaxPorts int
	Gather           Sample  // ns per Gather
	Allocs, Bytes    float64 // heap allocations and bytes allocated per Gather
	Heap             uint64  // live heap (HeapAlloc after a GC) after the Gathers, plugin running
	Metrics          int     // metrics per Gather
}

// limitCases are the cases of a scan of active ports: under the default
// max_ports, with no limit, and one active port (the floor).
func limitCases(active int) []LimitCase {
	return []LimitCase{{Active: active, MaxPorts: defaultMaxPorts}, {Active: active}, {Active: 1, MaxPorts: defaultMaxPorts}}
}

// RunGatherLimit runs each limit case on a new veth of pair p (this
// process must be in the receiver namespace): Start, one frame to each
// active port, Gathers until the counts settle (they must be exact: at
// most max_ports port series, the rest in port="other"), then reps timed
// Gathers into an accumulator that drops every metric, so that time and
// allocations are the plugin's own.
func RunGatherLimit(t testing.TB, p *testnet.Pair, active, reps int) ([]LimitCase, error) {
	ifaces := p.AddVeths(t, "xls", "xlr", 1)
	var out []LimitCase
	for _, lc := range limitCases(active) {
		if err := limitCase(p, ifaces, "xls0", &lc, reps); err != nil {
			return nil, fmt.Errorf("%d active ports, max_ports %d: %w", lc.Active, lc.MaxPorts, err)
		}
		out = append(out, lc)
	}
	return out, nil
}

func limitCase(pair *testnet.Pair, ifaces []string, sender string, lc *LimitCase, reps int) error {
	p, err := newPlugin(ifaces, func(p *plugin.XDPUDPPorts) { p.MaxPorts = lc.MaxPorts })
	if err != nil {
		return err
	}
	if err := p.Start(&testutil.Accumulator{}); err != nil {
		return err
	}
	defer p.Stop()
	if err := checkHooks(pair.Receiver, ifaces, defaultHooks...); err != nil {
		return err
	}
	ports := activePorts(lc.Active)
	fs := make([][]byte, len(ports))
	for i, port := range ports {
		fs[i] = frames.IPv4UDP(64, frames.PortEphemeral, port)
	}
	if err := pair.InSender(func() error { return sendFrames(sender, fs) }); err != nil {
		return err
	}
	acc, err := gatherSettled(p)
	if err != nil {
		return err
	}
	if err := checkGather(acc, ifaces, ports, lc.MaxPorts); err != nil {
		return err
	}
	var before, after runtime.MemStats
	var drop dropAccumulator
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range reps {
		drop.metrics = 0
		start := time.Now()
		err := p.Gather(&drop)
		d := time.Since(start)
		if err != nil {
			return err
		}
		lc.Gather = append(lc.Gather, nanos(d))
	}
	runtime.ReadMemStats(&after)
	lc.Allocs = float64(after.Mallocs-before.Mallocs) / float64(reps)
	lc.Bytes = float64(after.TotalAlloc-before.TotalAlloc) / float64(reps)
	lc.Metrics = drop.metrics
	runtime.GC()
	runtime.ReadMemStats(&after)
	lc.Heap = after.HeapAlloc
	return nil
}

// dropAccumulator counts metrics and keeps none.
type dropAccumulator struct{ metrics int }

func (a *dropAccumulator) add() { a.metrics++ }

func (a *dropAccumulator) AddFields(string, map[string]any, map[string]string, ...time.Time) {
	a.add()
}

func (a *dropAccumulator) AddGauge(string, map[string]any, map[string]string, ...time.Time) {
	a.add()
}

func (a *dropAccumulator) AddCounter(string, map[string]any, map[string]string, ...time.Time) {
	a.add()
}

func (a *dropAccumulator) AddSummary(string, map[string]any, map[string]string, ...time.Time) {
	a.add()
}

func (a *dropAccumulator) AddHistogram(string, map[string]any, map[string]string, ...time.Time) {
	a.add()
}
func (a *dropAccumulator) AddMetric(telegraf.Metric)                              { a.add() }
func (*dropAccumulator) SetPrecision(time.Duration)                               {}
func (*dropAccumulator) AddError(error)                                           {}
func (*dropAccumulator) WithTracking(maxTracked int) telegraf.TrackingAccumulator { return nil }

// limitRows are the rows of a scan's active ports under the default
// max_ports, next to no limit and to one active port (information; no
// goal is set yet): of part 3, the plugin's Gather; of part 5, its
// allocations and heap.
func limitRows(cs []LimitCase) (read, memory []Row) {
	if len(cs) != 3 {
		return nil, nil
	}
	limited, unlimited, one := cs[0], cs[1], cs[2]
	label := func(c LimitCase) string {
		limit := fmt.Sprintf("max_ports = %d", c.MaxPorts)
		if c.MaxPorts == defaultMaxPorts {
			limit += " (default)"
		}
		if c.MaxPorts == 0 {
			limit = "max_ports = 0 (no limit)"
		}
		return fmt.Sprintf("%d active port(s), %s: %d metrics", c.Active, limit, c.Metrics)
	}
	allocs := func(c LimitCase) string {
		return fmt.Sprintf("%.0f allocs, %s", c.Allocs, bytesIEC(c.Bytes))
	}
	heap := func(c LimitCase) string { return bytesIEC(float64(c.Heap)) }
	for _, base := range []LimitCase{unlimited, one} {
		read = append(read, Row{Part: "3 counter read", Case: "plugin's Gather alone, 1 interface, " + label(limited),
			Value: minMed(limited.Gather), Baseline: minMed(base.Gather) + ", " + label(base),
			Ratio: ratio(limited.Gather.Median(), base.Gather.Median())})
		memory = append(memory,
			Row{Part: "5 memory", Case: "allocations per Gather, 1 interface, " + label(limited),
				Value: allocs(limited), Baseline: allocs(base) + ", " + label(base),
				Ratio: ratio(limited.Bytes, base.Bytes)},
			Row{Part: "5 memory", Case: "live heap after the Gathers, plugin running, 1 interface, " + label(limited),
				Value: heap(limited), Baseline: heap(base) + ", " + label(base),
				Ratio: ratio(float64(limited.Heap), float64(base.Heap))},
		)
	}
	return read, memory
}
