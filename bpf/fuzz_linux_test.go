package bpf_test

import (
	"testing"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
)

const (
	// fuzzBatch is how many inputs pass between two full counter checks.
	fuzzBatch = 2048
	// fuzzGenerated seeds beyond the catalogue come from the property
	// test's generator (VLAN stacks, long IPv6 chains, odd sizes): the
	// fuzzer's coverage sees only the Go reference, not the BPF program,
	// so varied starting points matter.
	fuzzGenerated = 256
	fuzzSeed      = 7
)

// FuzzClassify runs each input frame through both variants of the real
// program (BPF_PROG_TEST_RUN) and compares it with the reference
// classifier: verdict XDP_PASS, output == input, the counters the
// reference names moved by exactly this frame, and every counter equal to
// the expected sums once per batch. Inputs shorter than 14 bytes (which
// the kernel refuses) or longer than it accepts are skipped. Seeds: the
// frames catalogue and generated frames; `make fuzz` runs it for FUZZTIME.
func FuzzClassify(f *testing.F) {
	for _, c := range frames.Catalogue() {
		f.Add(c.Frame)
	}
	g := newFrameGen(fuzzSeed)
	for range fuzzGenerated {
		frame, _ := g.valid()
		f.Add(frame)
	}
	d := newDiffer(newRig(f, bpf.Config{CountSource: true}), fuzzBatch, "")
	f.Cleanup(func() {
		for _, p := range d.flush() {
			f.Error(p)
		}
	})
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, p := range d.check(frame) {
			t.Error(p)
		}
	})
}
