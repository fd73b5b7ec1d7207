package bpf_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// corpusDir is FuzzClassify's seed corpus; mismatches found outside the
// fuzzer are saved there so they become regression cases.
var corpusDir = filepath.Join("testdata", "fuzz", "FuzzClassify")

// maxSaved bounds how many mismatching frames one run saves.
const maxSaved = 20

// differ compares the program with the reference classifier frame by frame:
// after every run the counters the reference names must have moved by
// exactly that frame; every `every` frames all counters are read and must
// equal the sum of the batch.
type differ struct {
	r       *rig
	every   int
	batch   [][]byte // frames since the last full check
	want    tally    // what the batch should have added
	base    tally    // every counter at the last full check
	saveDir string   // "" saves nothing
	saved   int
}

func newDiffer(r *rig, every int, saveDir string) *differ {
	d := &differ{r: r, every: every, saveDir: saveDir}
	d.resync()
	return d
}

var variants = []bpf.Variant{bpf.Plain, bpf.Frags}

// check runs frame through each variant that sees it whole and returns the
// mismatches, each with the frame in hex and both verdicts.
func (d *differ) check(frame []byte) []string {
	var out []string
	ran := false
	for _, v := range variants {
		if !d.r.runs(v, frame) {
			continue
		}
		ran = true
		want := d.r.expect(v, frame)
		res, err := d.r.run(v, frame, want)
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		d.want.add(want, d.r.layout)
		if p := d.r.problems(res, want); len(p) > 0 {
			out = append(out, d.mismatch(v, frame, want, p))
		}
	}
	if ran {
		d.batch = append(d.batch, bytes.Clone(frame))
	}
	if len(d.batch) >= d.every {
		out = append(out, d.flush()...)
	}
	return out
}

// flush compares every counter with the batch's expected sums; on a
// difference it re-runs the batch frame by frame to name the culprits.
func (d *differ) flush() []string {
	var out []string
	if diff := d.r.tally().minus(d.base).diff(d.want); len(diff) > 0 {
		out = append(out, fmt.Sprintf("full counters after %d frames: %s", len(d.batch), strings.Join(diff, "; ")))
		out = append(out, d.culprits()...)
	}
	d.resync()
	return out
}

// culprits re-runs each frame of the batch between two full reads.
func (d *differ) culprits() []string {
	var out []string
	for _, frame := range d.batch {
		for _, v := range variants {
			if !d.r.runs(v, frame) {
				continue
			}
			want := d.r.expect(v, frame)
			w := newTally()
			w.add(want, d.r.layout)
			got, res, err := d.r.observe(v, frame)
			if err != nil {
				out = append(out, err.Error())
			} else if p := append(res.passProblems(), got.diff(w)...); len(p) > 0 {
				out = append(out, d.report(v, frame, want, got, res, p))
			}
		}
	}
	return out
}

// mismatch re-runs a frame between full reads to show what the program
// did, saves it and reports it.
func (d *differ) mismatch(v bpf.Variant, frame []byte, want verdict, problems []string) string {
	got, res, err := d.r.observe(v, frame)
	if err != nil {
		problems = append(problems, err.Error())
	}
	msg := d.report(v, frame, want, got, res, problems)
	d.resync()
	return msg
}

func (d *differ) report(v bpf.Variant, frame []byte, want verdict, got tally, res result, problems []string) string {
	saved := d.save(frame)
	return fmt.Sprintf("%v: %s\n  frame (%d bytes): %x\n  reference: %v\n  program:   %s (verdict %d, output unchanged: %v)%s",
		v, strings.Join(problems, "; "), len(frame), frame, want, got.describe(), res.Verdict, res.Same, saved)
}

// save writes frame into the fuzz corpus in `go test fuzz v1` format.
func (d *differ) save(frame []byte) string {
	if d.saveDir == "" || d.saved >= maxSaved {
		return ""
	}
	data := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", frame)
	name := filepath.Join(d.saveDir, fmt.Sprintf("%x", sha256.Sum256(data))[:16])
	if err := os.MkdirAll(d.saveDir, 0o755); err != nil {
		return fmt.Sprintf("\n  not saved: %v", err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		return fmt.Sprintf("\n  not saved: %v", err)
	}
	d.saved++
	return "\n  saved as " + name
}

// resync starts a new batch from the counters as they are.
func (d *differ) resync() {
	d.base = d.r.tally()
	d.want = newTally()
	d.batch = d.batch[:0]
}
