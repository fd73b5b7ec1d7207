package top

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/influxdata/telegraf"
)

// messages is where the plugin's log lines (from a cli.Logger) and
// errors go, one line each starting with a level marker ("E! ", "W! ",
// "I! "...). Written straight to stderr while no live view is on the
// terminal; while one is, they are kept for its status lines, and
// warnings and errors are written out when the view closes, so none is
// lost.
type messages struct {
	mu     sync.Mutex
	w      io.Writer
	hold   bool     // a live view owns the terminal
	recent []string // the last few, for the status lines
	held   []string // warnings and errors to write when the view closes
}

const (
	recentMessages = 3
	heldMessages   = 100
)

func (m *messages) add(level telegraf.LogLevel, msg string) {
	fmt.Fprintf(m, "%s %s\n", level.Indicator(), msg)
}

// Write takes whole lines.
func (m *messages) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.hold {
		return m.w.Write(p)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(p), "\n"), "\n") {
		m.recent = append(m.recent, time.Now().Format("15:04:05")+" "+line)
		if len(m.recent) > recentMessages {
			m.recent = m.recent[len(m.recent)-recentMessages:]
		}
		if strings.HasPrefix(line, telegraf.Error.Indicator()) || strings.HasPrefix(line, telegraf.Warn.Indicator()) {
			if len(m.held) == heldMessages {
				m.held = append(m.held[:0], m.held[1:]...)
			}
			m.held = append(m.held, line)
		}
	}
	return len(p), nil
}

// latest returns the recent messages for the status lines.
func (m *messages) latest() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.recent...)
}

// holdWhileLive keeps messages for the live view until release.
func (m *messages) holdWhileLive() {
	m.mu.Lock()
	m.hold = true
	m.mu.Unlock()
}

// release writes the held warnings and errors and goes back to writing
// each message at once.
func (m *messages) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, line := range m.held {
		fmt.Fprintln(m.w, line)
	}
	m.hold, m.held, m.recent = false, nil, nil
}
