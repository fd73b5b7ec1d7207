package testproc

import (
	"io"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/parsers/influx"
)

// WaitFor reads stdout, line protocol, until a metric satisfies ok.
func (p *Proc) WaitFor(t testing.TB, timeout time.Duration, ok func(telegraf.Metric) bool) telegraf.Metric {
	t.Helper()
	return p.read(t, timeout, nil, ok)
}

// GatherUntil asks for a gather (a line on stdin, as Telegraf's execd
// does at each interval with signal = "STDIN") every 200 ms and reads
// stdout, line protocol, until a metric satisfies ok. A new series may
// first be reported with zero counts; later gathers carry its real values.
func (p *Proc) GatherUntil(t testing.TB, timeout time.Duration, ok func(telegraf.Metric) bool) telegraf.Metric {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	p.gather(t)
	return p.read(t, timeout, tick.C, ok)
}

func (p *Proc) gather(t testing.TB) {
	t.Helper()
	if _, err := io.WriteString(p.Stdin, "\n"); err != nil {
		t.Fatalf("writing to stdin: %v; stderr:\n%s", err, p.Stderr)
	}
}

// read parses stdout lines until a metric satisfies ok, asking for a
// gather at every tick of gatherAt (nil: never).
func (p *Proc) read(t testing.TB, timeout time.Duration, gatherAt <-chan time.Time, ok func(telegraf.Metric) bool) telegraf.Metric {
	t.Helper()
	if p.lines == nil {
		t.Fatal("testproc: stdout is not read: the command came with its own Stdout")
	}
	parser := &influx.Parser{}
	if err := parser.Init(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(timeout)
	for {
		select {
		case line, open := <-p.lines:
			if !open {
				t.Fatalf("stdout closed; stderr:\n%s", p.Stderr)
			}
			m, err := parser.ParseLine(line)
			if err != nil {
				t.Fatalf("stdout line %q is not line protocol: %v", line, err)
			}
			if p.EachLine != nil {
				p.EachLine(t, line)
			}
			if ok(m) {
				return m
			}
		case <-gatherAt:
			p.gather(t)
		case <-deadline:
			t.Fatalf("no matching metric within %s; stderr:\n%s", timeout, p.Stderr)
		}
	}
}
