package main

import (
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/metric"
)

// accumulator is the telegraf.Accumulator the execd mode gives the
// plugin: metrics go to the output, errors to the log as E! lines (the
// plugin names the interface in each).
type accumulator struct {
	out *output
	log telegraf.Logger
}

var _ telegraf.Accumulator = (*accumulator)(nil)

func (a *accumulator) add(name string, fields map[string]any, tags map[string]string, tp telegraf.ValueType, t []time.Time) {
	tm := time.Now()
	if len(t) > 0 {
		tm = t[0]
	}
	a.out.add(metric.New(name, tags, fields, tm, tp))
}

func (a *accumulator) AddFields(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	a.add(name, fields, tags, telegraf.Untyped, t)
}

func (a *accumulator) AddGauge(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	a.add(name, fields, tags, telegraf.Gauge, t)
}

func (a *accumulator) AddCounter(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	a.add(name, fields, tags, telegraf.Counter, t)
}

func (a *accumulator) AddSummary(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	a.add(name, fields, tags, telegraf.Summary, t)
}

func (a *accumulator) AddHistogram(name string, fields map[string]any, tags map[string]string, t ...time.Time) {
	a.add(name, fields, tags, telegraf.Histogram, t)
}

func (a *accumulator) AddMetric(m telegraf.Metric) { a.out.add(m) }

// SetPrecision does nothing: timestamps are written in nanoseconds, as
// Telegraf's shim does.
func (*accumulator) SetPrecision(time.Duration) {}

func (a *accumulator) AddError(err error) {
	if err != nil {
		a.log.Error(err.Error())
	}
}

// WithTracking is not used by the plugin.
func (*accumulator) WithTracking(int) telegraf.TrackingAccumulator {
	panic("xdp_udp_ports: tracking accumulator not supported")
}
