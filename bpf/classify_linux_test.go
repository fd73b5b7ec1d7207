package bpf_test

import (
	"fmt"
	"testing"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
)

// classifyConfigs are the instances the table runs on: every port dense,
// and an allow-list whose unlisted ports (40000, 123, 0…) share "other".
var classifyConfigs = []struct {
	name string
	cfg  bpf.Config
}{
	{"dense", bpf.Config{CountSource: true}},
	{"allow-list", bpf.Config{CountSource: true, Ports: []uint16{frames.PortDNS, frames.PortVXLAN, 65535}}},
}

// TestClassify runs one frame of every class through both variants with
// BPF_PROG_TEST_RUN (frames larger than the first buffer through xdp.frags
// only) and checks the verdict, that the frame is unchanged, and the exact
// change of every port and summary counter.
func TestClassify(t *testing.T) {
	for _, cc := range classifyConfigs {
		t.Run(cc.name, func(t *testing.T) {
			r := newRig(t, cc.cfg)
			for _, v := range []bpf.Variant{bpf.Plain, bpf.Frags} {
				for _, c := range frames.Catalogue() {
					if c.Multi && v == bpf.Plain {
						continue
					}
					t.Run(fmt.Sprintf("%v/%s", v, c.Name), func(t *testing.T) {
						checkCase(t, r, v, c)
					})
				}
			}
		})
	}
}

func checkCase(t *testing.T, r *rig, v bpf.Variant, c frames.Case) {
	if !r.runs(v, c.Frame) {
		t.Fatalf("%d-byte frame does not fit %v's buffers (%+v): fix the catalogue's Multi", len(c.Frame), v, r.tr)
	}
	want := verdict{Class: c.Class, Dst: c.Dst, Src: c.Src, Bytes: uint64(len(c.Frame))}
	wantAll := newTally()
	wantAll.add(want, r.layout)

	before := r.tally()
	res, err := r.run(v, c.Frame, want)
	if err != nil {
		t.Fatal(err)
	}
	got := r.tally().minus(before)
	for _, p := range append(r.problems(res, want), got.diff(wantAll)...) {
		t.Errorf("%s (rule %s): %s", c.Name, c.Rule, p)
	}
	if t.Failed() {
		t.Logf("frame %x\nwant %v; program: %s", c.Frame, want, got.describe())
	}
}

// TestReferenceCatalogue checks the reference classifier against the
// catalogue's hand-written expectations (no root needed).
func TestReferenceCatalogue(t *testing.T) {
	tr := testRunLayoutOf(t)
	for _, c := range frames.Catalogue() {
		want := verdict{Class: c.Class, Dst: c.Dst, Src: c.Src, Bytes: uint64(len(c.Frame))}
		if got := reference(c.Frame, tr.First); got != want {
			t.Errorf("%s (rule %s): reference says %v, catalogue %v", c.Name, c.Rule, got, want)
		}
	}
}
