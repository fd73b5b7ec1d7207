package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/influxdata/telegraf"
	"golang.org/x/sys/unix"
)

// stopTimeout bounds how long stopping waits for stdout: what is not
// written by then is dropped (and counted on stderr), so the plugin's Stop
// - which detaches the programs - comes within it even when nobody reads
// stdout (Telegraf stalled, a pipe nobody reads).
const stopTimeout = 200 * time.Millisecond

// execd runs the plugin the way Telegraf's execd runs an external input,
// as Telegraf's shim does, but it stops on time when stdout is blocked,
// writes fields sorted and logs every line with a level marker.
type execd struct {
	plugin telegraf.ServiceInput
	log    telegraf.Logger
	stdin  io.Reader
	stdout io.Writer
	poll   time.Duration // 0: gather only when a line arrives on stdin
}

// run starts the plugin, gathers every poll and at every line on stdin,
// and stops at SIGTERM or SIGINT, when stdin closes or when stdout is
// broken; it logs which. It returns Start's error.
func (e *execd) run() error {
	// Caught before Start: one that comes while attaching stops as soon
	// as Start returns. A broken stdout is a write error, not SIGPIPE.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	signal.Ignore(syscall.SIGPIPE)

	out := newOutput(e.stdout)
	acc := &accumulator{out: out, log: e.log}
	if err := e.plugin.Start(acc); err != nil {
		return err
	}
	prompt := make(chan struct{}, 1)
	stdinEnd := make(chan string, 1)
	go readStdin(e.stdin, prompt, stdinEnd)
	stop, gathered := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(gathered)
		e.gather(acc, prompt, stop)
	}()

	var why string
	select {
	case sig := <-signals:
		why = "got " + unix.SignalName(sig.(syscall.Signal))
	case why = <-stdinEnd:
	case <-out.broke:
		why = fmt.Sprintf("writing to stdout: %v", out.err)
	}
	e.log.Infof("%s; stopping", why)
	out.stopBy(stopTimeout)
	close(stop)
	<-gathered
	e.plugin.Stop()
	if n, reason := out.finish(); n > 0 {
		e.log.Warnf("%s: dropped %d %s that could not be written", reason, n, plural(n, "metric"))
	}
	return nil
}

// gather calls Gather at every tick and prompt until stop.
func (e *execd) gather(acc telegraf.Accumulator, prompt <-chan struct{}, stop <-chan struct{}) {
	var tick <-chan time.Time
	if e.poll > 0 {
		t := time.NewTicker(e.poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-stop:
			return
		case <-prompt:
		case <-tick:
		}
		select {
		case <-stop: // stopping goes first
			return
		default:
		}
		if err := e.plugin.Gather(acc); err != nil {
			acc.AddError(err)
		}
	}
}

// readStdin prompts a Gather for every read that holds a line end (a
// second prompt while one waits is one Gather) and says why it ended.
func readStdin(r io.Reader, prompt chan<- struct{}, end chan<- string) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if bytes.IndexByte(buf[:n], '\n') >= 0 {
			select {
			case prompt <- struct{}{}:
			default:
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			end <- "stdin closed"
			return
		case err != nil:
			end <- fmt.Sprintf("reading stdin: %v", err)
			return
		}
	}
}

func plural(n uint64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
