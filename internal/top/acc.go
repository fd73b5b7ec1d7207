package top

import (
	"sync"
	"time"

	"github.com/influxdata/telegraf"
)

// point is one metric as the plugin reported it.
type point struct {
	name   string
	tags   map[string]string
	fields map[string]any
	time   time.Time
}

// collector is the telegraf.Accumulator `top` gives the plugin: it keeps
// the metrics of a Gather until drained and passes errors (which the
// plugin also reports from its own goroutine) to the message log.
type collector struct {
	mu     sync.Mutex
	points []point
	msgs   *messages
}

var _ telegraf.Accumulator = (*collector)(nil)

func (c *collector) add(name string, fields map[string]any, tags map[string]string, t []time.Time) {
	p := point{name: name, tags: tags, fields: fields, time: time.Now()}
	if len(t) > 0 {
		p.time = t[0]
	}
	c.mu.Lock()
	c.points = append(c.points, p)
	c.mu.Unlock()
}

// drain returns the metrics added since the last drain.
func (c *collector) drain() []point {
	c.mu.Lock()
	defer c.mu.Unlock()
	pts := c.points
	c.points = nil
	return pts
}

func (c *collector) AddFields(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	c.add(name, fields, tags, t)
}

func (c *collector) AddGauge(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	c.add(name, fields, tags, t)
}

func (c *collector) AddCounter(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	c.add(name, fields, tags, t)
}

func (c *collector) AddSummary(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	c.add(name, fields, tags, t)
}

func (c *collector) AddHistogram(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	c.add(name, fields, tags, t)
}

func (c *collector) AddMetric(m telegraf.Metric) {
	c.add(m.Name(), m.Fields(), m.Tags(), []time.Time{m.Time()})
}

func (*collector) SetPrecision(time.Duration) {}

func (c *collector) AddError(err error) {
	if err != nil {
		c.msgs.add(telegraf.Error, err.Error())
	}
}

// WithTracking is not used by the plugin; `top` delivers nowhere.
func (*collector) WithTracking(int) telegraf.TrackingAccumulator {
	panic("xdp_udp_ports top: tracking accumulator not supported")
}
