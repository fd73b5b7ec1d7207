// Package cli is what the modes of the xdp_udp_ports command (execd, top,
// unpin) share: the plugin's config file, log lines and flags.
package cli

import (
	"fmt"
	"io"
	"sync"

	"github.com/influxdata/telegraf"
)

// Logger writes one line per message that starts with Telegraf's level
// marker ("I! ", "W! ", ...): Telegraf's execd maps such stderr lines to
// its own log levels (a line without one would be logged as an error,
// quoted).
type Logger struct {
	mu    sync.Mutex
	w     io.Writer
	level telegraf.LogLevel
}

// NewLogger logs to w at info level, or debug level too when debug is set.
func NewLogger(w io.Writer, debug bool) *Logger {
	level := telegraf.Info
	if debug {
		level = telegraf.Debug
	}
	return &Logger{w: w, level: level}
}

func (l *Logger) log(level telegraf.LogLevel, msg string) {
	if !l.level.Includes(level) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s\n", level.Indicator(), msg)
}

func (l *Logger) Level() telegraf.LogLevel          { return l.level }
func (*Logger) AddAttribute(string, interface{})    {}
func (l *Logger) Errorf(f string, a ...interface{}) { l.log(telegraf.Error, fmt.Sprintf(f, a...)) }
func (l *Logger) Error(a ...interface{})            { l.log(telegraf.Error, fmt.Sprint(a...)) }
func (l *Logger) Warnf(f string, a ...interface{})  { l.log(telegraf.Warn, fmt.Sprintf(f, a...)) }
func (l *Logger) Warn(a ...interface{})             { l.log(telegraf.Warn, fmt.Sprint(a...)) }
func (l *Logger) Infof(f string, a ...interface{})  { l.log(telegraf.Info, fmt.Sprintf(f, a...)) }
func (l *Logger) Info(a ...interface{})             { l.log(telegraf.Info, fmt.Sprint(a...)) }
func (l *Logger) Debugf(f string, a ...interface{}) { l.log(telegraf.Debug, fmt.Sprintf(f, a...)) }
func (l *Logger) Debug(a ...interface{})            { l.log(telegraf.Debug, fmt.Sprint(a...)) }
func (l *Logger) Tracef(f string, a ...interface{}) { l.log(telegraf.Trace, fmt.Sprintf(f, a...)) }
func (l *Logger) Trace(a ...interface{})            { l.log(telegraf.Trace, fmt.Sprint(a...)) }
