package bpf_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
)

// tcUnspec is TC_ACT_UNSPEC (= TCX_NEXT, -1), the only verdict the TC
// program may return: the packet goes on to the next program unchanged.
const tcUnspec = 0xffffffff

// skbLayout is where BPF_PROG_TEST_RUN takes the GSO fields of a
// SCHED_CLS run from: offsets in struct __sk_buff (kernel BTF).
type skbLayout struct {
	size             int
	gsoSegs, gsoSize int
}

var skbCtxLayout = sync.OnceValues(func() (skbLayout, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return skbLayout{}, err
	}
	var st *btf.Struct
	if err := spec.TypeByName("__sk_buff", &st); err != nil {
		return skbLayout{}, fmt.Errorf("struct __sk_buff in kernel BTF: %w", err)
	}
	l := skbLayout{size: int(st.Size), gsoSegs: -1, gsoSize: -1}
	for _, m := range st.Members {
		switch m.Name {
		case "gso_segs":
			l.gsoSegs = int(m.Offset.Bytes())
		case "gso_size":
			l.gsoSize = int(m.Offset.Bytes())
		}
	}
	if l.gsoSegs < 0 || l.gsoSize < 0 {
		return skbLayout{}, fmt.Errorf("struct __sk_buff has no gso_segs/gso_size")
	}
	return l, nil
})

// gso is the GSO fields of one test run.
type gso struct{ segs, size uint32 }

// gsoCases are the GSO fields every frame is run with: none, gso_segs
// set (wins), gso_size only (segments from the length), and both.
var gsoCases = []gso{{0, 0}, {1, 0}, {5, 0}, {0, 100}, {0, 7}, {3, 1000}}

// skbCtx is a struct __sk_buff for a test run with the GSO fields set.
func skbCtx(tb testing.TB, g gso) []byte {
	tb.Helper()
	l, err := skbCtxLayout()
	if err != nil {
		tb.Fatal(err)
	}
	ctx := make([]byte, l.size)
	binary.NativeEndian.PutUint32(ctx[l.gsoSegs:], g.segs)
	binary.NativeEndian.PutUint32(ctx[l.gsoSize:], g.size)
	return ctx
}

// tcRig is one loaded instance's TC program.
type tcRig struct {
	c      *bpf.Counters
	prog   *ebpf.Program
	layout bpf.Layout
	out    []byte
	snap   bpf.Snapshot
}

func newTCRig(tb testing.TB, cfg bpf.Config) *tcRig {
	tb.Helper()
	r := newRig(tb, cfg)
	prog, err := r.c.Program(bpf.TC)
	if err != nil {
		tb.Fatal(err)
	}
	return &tcRig{c: r.c, prog: prog, layout: r.layout, out: make([]byte, 1<<16)}
}

func (r *tcRig) tally() tally {
	r.c.Snapshot(&r.snap)
	return tallyOf(&r.snap)
}

// vlanPusher returns a SCHED_CLS program that moves a tag into packet
// metadata with bpf_skb_vlan_push (as the kernel does before TC ingress,
// or a VLAN device on egress) and tail-calls prog.
func vlanPusher(tb testing.TB, prog *ebpf.Program, tpid, tci uint16) *ebpf.Program {
	tb.Helper()
	progs, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { progs.Close() })
	if err := progs.Put(uint32(0), uint32(prog.FD())); err != nil {
		tb.Fatal(err)
	}
	be := binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, tpid))
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SchedCLS, License: "Dual MIT/GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.Mov.Imm(asm.R2, int32(be)),
			asm.Mov.Imm(asm.R3, int32(tci)),
			asm.FnSkbVlanPush.Call(),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.LoadMapPtr(asm.R2, progs.FD()),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnTailCall.Call(),
			asm.Mov.Imm(asm.R0, 2), // TC_ACT_SHOT: the tail call failed
			asm.Return(),
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// tcCase is one run of the TC program: the bytes it gets, the VLAN tag
// in metadata if any, the GSO fields, and what the rules make of it.
type tcCase struct {
	name  string
	input []byte
	meta  []byte // the tag (TPID, TCI) held in metadata, nil if none
	gso   gso
	want  verdict // Bytes: of all segments
	segs  uint64
}

// check runs c through r (through via when a tag goes into metadata)
// and compares the verdict, the output and every counter.
func (r *tcRig) check(t *testing.T, c tcCase, via *ebpf.Program) {
	t.Helper()
	prog := r.prog
	if via != nil {
		prog = via
	}
	before := r.tally()
	opts := ebpf.RunOptions{Data: c.input, DataOut: r.out, Context: skbCtx(t, c.gso)}
	ret, err := prog.Run(&opts)
	if err != nil {
		t.Fatalf("%s: BPF_PROG_TEST_RUN of %d bytes: %v", c.name, len(c.input), err)
	}
	if ret != tcUnspec {
		t.Errorf("%s: verdict %d, want TC_ACT_UNSPEC", c.name, int32(ret))
	}
	if !bytes.Equal(opts.DataOut, c.input) {
		t.Errorf("%s: output bytes differ from the input", c.name)
	}
	want := newTally()
	want.addSegments(c.want, c.segs, r.layout)
	for _, p := range r.tally().minus(before).diff(want) {
		t.Errorf("%s: %s (want %v x%d)", c.name, p, c.want, c.segs)
	}
}

// tcCases turns a frame into the runs of the TC program that must count
// it as the rules say: as it is, with each GSO case, and with its outer
// tag (or, untagged, a new one) moved into metadata.
func tcCases(name string, frame []byte, start bpf.Frame) []tcCase {
	var out []tcCase
	// wire is the frame as XDP would see it, with a tag held in metadata
	// in place: the rules (class, bytes, headers per segment) are its.
	add := func(sub string, input, meta, wire []byte, g gso) {
		p := refParse(wire, len(wire), start, 0)
		segs, n := refSegments(p, wire, g.segs, g.size)
		out = append(out, tcCase{name: fmt.Sprintf("%s/%s/gso=%d,%d", name, sub, g.segs, g.size),
			input: input, meta: meta, gso: g, want: p.verdict(int(n)), segs: segs})
	}
	for _, g := range gsoCases {
		add("linear", frame, nil, frame, g)
	}
	if start != bpf.FrameEthernet || len(frame) < 14 {
		return out
	}
	// The frame as it was on the wire has one tag more; the kernel holds
	// it in metadata.
	tag := []byte{0x81, 0x00, 0x00, 0x2a}
	wire := append(append(append([]byte{}, frame[:12]...), tag...), frame[12:]...)
	for _, g := range gsoCases {
		add("vlan-meta", frame, tag, wire, g)
	}
	return out
}

// testRunTakesSKB reports whether a SCHED_CLS BPF_PROG_TEST_RUN takes an
// Ethernet frame: not larger than its linear buffer (about 3.7 KB), and
// not an IPv4 or IPv6 frame cut short inside the IP header (the kernel
// refuses those with EINVAL).
func testRunTakesSKB(frame []byte) bool {
	if len(frame) < 14 || len(frame) > 3500 {
		return false
	}
	switch binary.BigEndian.Uint16(frame[12:]) {
	case 0x0800:
		return len(frame) >= 14+20
	case 0x86DD:
		return len(frame) >= 14+40
	}
	return true
}

// TestClassifyTC runs every catalogue frame a SCHED_CLS test run takes
// (linear, 14 B to about 3.7 KB) through the TC program, as it is, with
// GSO fields, and with a VLAN tag in packet metadata: the verdict stays
// TC_ACT_UNSPEC, the frame unchanged, and exactly the counters the rules
// name change, by the segments and their wire bytes.
func TestClassifyTC(t *testing.T) {
	for _, cc := range classifyConfigs {
		t.Run(cc.name, func(t *testing.T) {
			r := newTCRig(t, cc.cfg)
			pushers := map[string]*ebpf.Program{}
			for _, fc := range frames.Catalogue() {
				if !testRunTakesSKB(fc.Frame) {
					continue // tested live (TestLiveTCCatalogue)
				}
				for _, c := range tcCases(fc.Name, fc.Frame, bpf.FrameEthernet) {
					var via *ebpf.Program
					if c.meta != nil {
						key := string(c.meta)
						if pushers[key] == nil {
							pushers[key] = vlanPusher(t, r.prog, binary.BigEndian.Uint16(c.meta), binary.BigEndian.Uint16(c.meta[2:]))
						}
						via = pushers[key]
					}
					t.Run(c.name, func(t *testing.T) { r.check(t, c, via) })
				}
			}
		})
	}
}

// TestClassifyIPStart runs frames of links without a link-layer header
// (TUN, WireGuard: the IP header first) through the TC program and both
// XDP variants of an instance loaded with FrameIP: every catalogue frame
// with its Ethernet header cut off, and versions that are neither 4 nor 6.
func TestClassifyIPStart(t *testing.T) {
	cfg := bpf.Config{CountSource: true, Frame: bpf.FrameIP}
	r := newTCRig(t, cfg)
	x := newRig(t, cfg)
	var packets []frames.Case
	for _, fc := range frames.Catalogue() {
		if testRunTakesSKB(fc.Frame) && len(fc.Frame) >= 2*14 {
			packets = append(packets, frames.Case{Name: fc.Name, Frame: fc.Frame[14:]})
		}
	}
	v4 := frames.IPv4UDP(64, frames.PortEphemeral, frames.PortDNS)[14:]
	for _, version := range []byte{0, 5, 7, 15} {
		b := append([]byte{}, v4...)
		b[0] = version<<4 | 5
		packets = append(packets, frames.Case{Name: fmt.Sprintf("version-%d", version), Frame: b})
	}
	for _, pk := range packets {
		for _, c := range tcCases(pk.Name, pk.Frame, bpf.FrameIP) {
			t.Run("tc/"+c.name, func(t *testing.T) { r.check(t, c, nil) })
		}
		want := refParse(pk.Frame, len(pk.Frame), bpf.FrameIP, 0).verdict(len(pk.Frame))
		for _, v := range []bpf.Variant{bpf.Plain, bpf.Frags} {
			t.Run(fmt.Sprintf("%v/%s", v, pk.Name), func(t *testing.T) {
				wantAll := newTally()
				wantAll.add(want, x.layout)
				before := x.tally()
				res, err := x.run(v, pk.Frame, want)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range append(x.problems(res, want), x.tally().minus(before).diff(wantAll)...) {
					t.Errorf("%s: %s", pk.Name, p)
				}
			})
		}
	}
}
