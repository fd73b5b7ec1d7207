package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/influxdata/telegraf"
)

// lineLogger writes one line per message that starts with Telegraf's level
// marker ("I! ", "W! ", ...): Telegraf's execd maps such stderr lines to
// its own log levels, while the shim's logger puts a timestamp first and
// every line would be logged as an error.
type lineLogger struct {
	mu    sync.Mutex
	w     io.Writer
	level telegraf.LogLevel
}

func (l *lineLogger) log(level telegraf.LogLevel, msg string) {
	if !l.level.Includes(level) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s\n", level.Indicator(), msg)
}

func (l *lineLogger) Level() telegraf.LogLevel          { return l.level }
func (*lineLogger) AddAttribute(string, interface{})    {}
func (l *lineLogger) Errorf(f string, a ...interface{}) { l.log(telegraf.Error, fmt.Sprintf(f, a...)) }
func (l *lineLogger) Error(a ...interface{})            { l.log(telegraf.Error, fmt.Sprint(a...)) }
func (l *lineLogger) Warnf(f string, a ...interface{})  { l.log(telegraf.Warn, fmt.Sprintf(f, a...)) }
func (l *lineLogger) Warn(a ...interface{})             { l.log(telegraf.Warn, fmt.Sprint(a...)) }
func (l *lineLogger) Infof(f string, a ...interface{})  { l.log(telegraf.Info, fmt.Sprintf(f, a...)) }
func (l *lineLogger) Info(a ...interface{})             { l.log(telegraf.Info, fmt.Sprint(a...)) }
func (l *lineLogger) Debugf(f string, a ...interface{}) { l.log(telegraf.Debug, fmt.Sprintf(f, a...)) }
func (l *lineLogger) Debug(a ...interface{})            { l.log(telegraf.Debug, fmt.Sprint(a...)) }
func (l *lineLogger) Tracef(f string, a ...interface{}) { l.log(telegraf.Trace, fmt.Sprintf(f, a...)) }
func (l *lineLogger) Trace(a ...interface{})            { l.log(telegraf.Trace, fmt.Sprint(a...)) }
