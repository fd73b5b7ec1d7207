package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf/metric"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

// stuckWriter never returns from Write, like stdout nobody reads.
type stuckWriter struct{ never chan struct{} }

func (w stuckWriter) Write([]byte) (int, error) { <-w.never; return 0, nil }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// addAll adds n metrics from another goroutine, as Gather does, and
// returns when all are added (queued or dropped).
func addAll(o *output, n int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			o.add(metric.New("m", map[string]string{"port": fmt.Sprint(i)},
				map[string]any{"packets": int64(i), "bytes": int64(2 * i), "a": int64(0)}, time.Unix(0, int64(i))))
		}
	}()
	return done
}

func TestOutputWritesAllSorted(t *testing.T) {
	var buf testproc.SyncBuffer
	o := newOutput(&buf)
	<-addAll(o, 1000)
	o.stopBy(time.Second)
	if dropped, why := o.finish(); dropped != 0 {
		t.Fatalf("dropped %d (%s)", dropped, why)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1000 {
		t.Fatalf("%d lines, want 1000", len(lines))
	}
	for i, l := range lines {
		if want := fmt.Sprintf("m,port=%d a=0i,bytes=%di,packets=%di %d", i, 2*i, i, i); l != want {
			t.Fatalf("line %d: %q, want %q", i, l, want)
		}
	}
}

// A stuck stdout holds add until the deadline, then everything not
// written is dropped and counted; finish returns at the deadline.
func TestOutputStuck(t *testing.T) {
	w := stuckWriter{make(chan struct{})}
	defer close(w.never)
	o := newOutput(w)
	added := addAll(o, 1000)
	time.Sleep(50 * time.Millisecond)
	select {
	case <-added:
		t.Fatal("add did not wait for a stuck stdout")
	default:
	}
	start := time.Now()
	o.stopBy(100 * time.Millisecond)
	<-added
	dropped, why := o.finish()
	if took := time.Since(start); took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("finish after %s, want at the 100ms deadline", took)
	}
	if dropped != 1000 || why != "stdout is not read" {
		t.Errorf("dropped %d (%s), want 1000 (stdout is not read)", dropped, why)
	}
}

func TestOutputBroken(t *testing.T) {
	o := newOutput(failingWriter{})
	<-addAll(o, 10)
	select {
	case <-o.broke:
	case <-time.After(5 * time.Second):
		t.Fatal("write error not reported")
	}
	<-addAll(o, 10) // still taken, never written
	o.stopBy(time.Second)
	if dropped, why := o.finish(); dropped != 20 || why != "writing to stdout: broken pipe" {
		t.Errorf("dropped %d (%s), want 20 (writing to stdout: broken pipe)", dropped, why)
	}
}
