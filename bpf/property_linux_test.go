package bpf_test

import (
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

const (
	propertySeed   = 20240611
	propertyFrames = 1_000_000
	propertyBatch  = 1 << 14
	maxReported    = 20
)

// TestClassifyProperty compares the program with the reference classifier
// on a million generated and mutated frames (both variants where they see
// the frame whole), with the checks of FuzzClassify. A mismatching frame is
// printed in hex with both verdicts and saved to the fuzz corpus.
func TestClassifyProperty(t *testing.T) {
	r := newRig(t, bpf.Config{CountSource: true})
	d := newDiffer(r, propertyBatch, corpusDir)
	n, total := 0, propertyFrames
	if testing.Short() {
		total /= 10
	}
	var classes [4]int
	start := time.Now()
	reported := 0
	report := func(ps []string) {
		for _, p := range ps {
			t.Error(p)
		}
		if reported += len(ps); reported >= maxReported {
			t.Fatalf("stopping after %d mismatches (%d frames)", reported, n)
		}
	}
	for f := range newFrameGen(propertySeed).frames() {
		report(d.check(f))
		if len(f) >= minFrame {
			classes[r.expect(bpf.Frags, f).Class]++
		}
		if n++; n >= total {
			break
		}
	}
	report(d.flush())
	t.Logf("%d frames in %v; by class (xdp.frags view): fragment %d, other %d, malformed %d, udp %d",
		n, time.Since(start).Round(time.Millisecond), classes[bpf.ClassFragment], classes[bpf.ClassOther],
		classes[bpf.ClassMalformed], classes[bpf.ClassUDP])
}
