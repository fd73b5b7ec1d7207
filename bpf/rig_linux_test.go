package bpf_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

var sharedLoader = sync.OnceValues(bpf.NewLoader)

// xdpPass is XDP_PASS, the only verdict the program may return.
const xdpPass = 2

// rig is one loaded instance with both program variants, which share its
// counters, and the one way every test runs a frame through them.
type rig struct {
	c      *bpf.Counters
	layout bpf.Layout
	progs  [2]*ebpf.Program
	tr     testRun
	out    []byte
	snap   bpf.Snapshot
}

// newRig loads cfg (both variants) and closes it when tb ends.
func newRig(tb testing.TB, cfg bpf.Config) *rig {
	tb.Helper()
	testnet.Require(tb)
	l, err := sharedLoader()
	if err != nil {
		tb.Fatal(err)
	}
	if !l.FragsSupported() {
		testnet.SkipOrFail(tb, "the kernel has no multi-buffer XDP (xdp.frags, Linux 5.18)")
	}
	c, err := l.Load(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	r := &rig{c: c, layout: c.Layout(), tr: testRunLayoutOf(tb)}
	for _, v := range []bpf.Variant{bpf.Plain, bpf.Frags} {
		if r.progs[v], err = c.Program(v); err != nil {
			tb.Fatal(err)
		}
	}
	r.out = make([]byte, r.tr.Max)
	return r
}

// runs reports whether variant v sees frame whole in BPF_PROG_TEST_RUN.
func (r *rig) runs(v bpf.Variant, frame []byte) bool {
	if len(frame) < minFrame || len(frame) > r.tr.Max {
		return false
	}
	return v == bpf.Frags || len(frame) <= r.tr.First
}

// expect is the reference verdict for what variant v sees of frame.
func (r *rig) expect(v bpf.Variant, frame []byte) verdict {
	first := len(frame)
	if v == bpf.Frags {
		first = r.tr.First
	}
	return reference(frame, first)
}

// probe is the counters a verdict names: the class slots and, for UDP,
// its port slots (the "other" slot for a port outside an allow-list).
// Reading them is cheap enough to do around every run.
type probe struct {
	Dst, Src, Fragment, Other, Malformed bpf.Counter
}

func (r *rig) probe(want verdict) probe {
	p := probe{
		Fragment:  r.c.Class(bpf.ClassFragment),
		Other:     r.c.Class(bpf.ClassOther),
		Malformed: r.c.Class(bpf.ClassMalformed),
	}
	if want.Class == bpf.ClassUDP {
		p.Dst, p.Src = r.c.Port(bpf.Destination, want.Dst), r.c.Port(bpf.Source, want.Src)
	}
	return p
}

// wantProbe is the change of the probed counters one frame makes.
func (r *rig) wantProbe(want verdict) probe {
	var p probe
	one := bpf.Counter{Packets: 1, Bytes: want.Bytes}
	switch want.Class {
	case bpf.ClassUDP:
		p.Dst = one
		if r.layout.SrcBase != 0 {
			p.Src = one
		}
	case bpf.ClassFragment:
		p.Fragment = one
	case bpf.ClassOther:
		p.Other = one
	case bpf.ClassMalformed:
		p.Malformed = one
	}
	return p
}

func (p probe) minus(o probe) probe {
	d := func(a, b bpf.Counter) bpf.Counter {
		return bpf.Counter{Packets: a.Packets - b.Packets, Bytes: a.Bytes - b.Bytes}
	}
	return probe{d(p.Dst, o.Dst), d(p.Src, o.Src), d(p.Fragment, o.Fragment), d(p.Other, o.Other), d(p.Malformed, o.Malformed)}
}

// result is one BPF_PROG_TEST_RUN of a frame.
type result struct {
	Verdict uint32 // the program's return value
	Same    bool   // output bytes == input bytes
	Delta   probe  // change of the counters want names
}

// run runs frame through variant v once and reads the counters want
// names before and after.
func (r *rig) run(v bpf.Variant, frame []byte, want verdict) (result, error) {
	before := r.probe(want)
	opts := ebpf.RunOptions{Data: frame, DataOut: r.out}
	ret, err := r.progs[v].Run(&opts)
	if err != nil {
		return result{}, fmt.Errorf("%v: BPF_PROG_TEST_RUN of %d bytes: %w", v, len(frame), err)
	}
	return result{Verdict: ret, Same: bytes.Equal(opts.DataOut, frame), Delta: r.probe(want).minus(before)}, nil
}

// passProblems lists how res differs from passing the frame unchanged.
func (res result) passProblems() []string {
	var out []string
	if res.Verdict != xdpPass {
		out = append(out, fmt.Sprintf("verdict %d, want XDP_PASS", res.Verdict))
	}
	if !res.Same {
		out = append(out, "output bytes differ from the input")
	}
	return out
}

// problems lists how res differs from one frame passed unchanged and
// counted as want.
func (r *rig) problems(res result, want verdict) []string {
	out := res.passProblems()
	if w := r.wantProbe(want); res.Delta != w {
		out = append(out, fmt.Sprintf("counters changed by %+v, want %+v", res.Delta, w))
	}
	return out
}

// tally reads every counter (expensive: once per batch or table case).
func (r *rig) tally() tally {
	r.c.Snapshot(&r.snap)
	return tallyOf(&r.snap)
}

// observe runs frame through v between two full reads and returns what
// changed: the program's own verdict, for mismatch reports.
func (r *rig) observe(v bpf.Variant, frame []byte) (tally, result, error) {
	before := r.tally()
	res, err := r.run(v, frame, verdict{})
	return r.tally().minus(before), res, err
}
