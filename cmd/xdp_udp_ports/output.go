package main

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/serializers/influx"
)

const (
	// queuedMetrics is how many metrics wait for the writer: enough to
	// fill a write, few enough that little is lost when stdout is stuck.
	queuedMetrics = 64
	// writeSize is the most a write carries: PIPE_BUF, so a write to a
	// pipe is all or nothing and a line is never cut, also at the end.
	writeSize = 4096
)

// output writes metrics to stdout as line protocol, fields sorted by
// name (Telegraf's influx_sort_fields), from a goroutine of its own.
// While the plugin runs, add waits for room (Gather slows down with a
// slow reader, as with Telegraf's shim). Once the deadline given to
// stopBy has passed, add drops what does not fit, so a stdout nobody
// reads can never hold up the plugin's Stop.
type output struct {
	w      io.Writer
	queue  chan telegraf.Metric
	quit   chan struct{} // closed at the stop deadline: add no longer waits
	closed chan struct{} // closed by finish: nothing adds any more
	done   chan struct{} // closed when the writer has ended
	broke  chan struct{} // closed at the first write error
	err    error         // that error, set before broke is closed

	deadline time.Time // set by stopBy

	added   atomic.Uint64 // queued
	refused atomic.Uint64 // dropped by add
	written atomic.Uint64
}

func newOutput(w io.Writer) *output {
	o := &output{
		w:      w,
		queue:  make(chan telegraf.Metric, queuedMetrics),
		quit:   make(chan struct{}),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
		broke:  make(chan struct{}),
	}
	go o.run()
	return o
}

// add queues m, waiting for room until the stop deadline.
func (o *output) add(m telegraf.Metric) {
	select {
	case o.queue <- m:
		o.added.Add(1)
		return
	default:
	}
	select {
	case o.queue <- m:
		o.added.Add(1)
	case <-o.quit:
		o.refused.Add(1)
	}
}

// run writes what is queued, batched up to writeSize bytes, until closed
// and drained. After a write error it only empties the queue.
func (o *output) run() {
	defer close(o.done)
	ser := &influx.Serializer{SortFields: true}
	if err := ser.Init(); err != nil {
		panic(err) // it cannot fail
	}
	var buf []byte
	var batch uint64 // metrics in buf
	broken := false
	flush := func() {
		if len(buf) > 0 && !broken {
			if _, err := o.w.Write(buf); err != nil {
				broken, o.err = true, err
				close(o.broke)
			} else {
				o.written.Add(batch)
			}
		}
		buf, batch = buf[:0], 0
	}
	for {
		var m telegraf.Metric
		select {
		case m = <-o.queue:
		case <-o.closed:
			select {
			case m = <-o.queue:
			default:
				return
			}
		}
		// Take what is queued now into one write.
		for m != nil {
			if line, err := ser.Serialize(m); err == nil && !broken {
				if len(buf) > 0 && len(buf)+len(line) > writeSize {
					flush()
				}
				buf = append(buf, line...)
				batch++
			}
			select {
			case m = <-o.queue:
			default:
				m = nil
			}
		}
		flush()
	}
}

// stopBy sets the deadline after which add drops instead of waiting and
// finish gives up on what is still queued.
func (o *output) stopBy(d time.Duration) {
	o.deadline = time.Now().Add(d)
	time.AfterFunc(d, func() { close(o.quit) })
}

// finish is called after stopBy, once nothing adds any more: it lets the
// writer write what is queued until the deadline and returns how many
// metrics were not written (dropped by add, or left in the queue or in a
// write when stdout is stuck or broken) and why.
func (o *output) finish() (dropped uint64, why string) {
	close(o.closed)
	timer := time.NewTimer(time.Until(o.deadline))
	defer timer.Stop()
	select {
	case <-o.done:
	case <-timer.C:
	}
	dropped = o.refused.Load() + o.added.Load() - o.written.Load()
	select {
	case <-o.broke:
		return dropped, fmt.Sprintf("writing to stdout: %v", o.err)
	default:
		return dropped, "stdout is not read"
	}
}
