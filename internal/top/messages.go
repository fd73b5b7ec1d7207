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
// terminal; while one is, warnings and errors are kept and written out
// when the view closes, so none is lost. Either way the latest are kept
// for the status lines of the view, warnings and errors before the rest:
// the reason nothing is attached stays in view.
type messages struct {
	mu     sync.Mutex
	w      io.Writer
	hold   bool      // a live view owns the terminal
	recent []message // the last few, oldest first
	held   []string  // warnings and errors to write when the view closes
}

type message struct {
	line    string // with the time it came
	problem bool   // a warning or an error
}

const (
	recentMessages = 3   // status lines
	keptMessages   = 20  // recent messages kept to choose them from
	heldMessages   = 100 // warnings and errors held while the view is on
)

func (m *messages) add(level telegraf.LogLevel, msg string) {
	fmt.Fprintf(m, "%s %s\n", level.Indicator(), msg)
}

func isProblem(line string) bool {
	return strings.HasPrefix(line, telegraf.Error.Indicator()) || strings.HasPrefix(line, telegraf.Warn.Indicator())
}

// Write takes whole lines.
func (m *messages) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now().Format("15:04:05")
	for _, line := range strings.Split(strings.TrimSuffix(string(p), "\n"), "\n") {
		problem := isProblem(line)
		m.recent = append(m.recent, message{line: now + " " + line, problem: problem})
		if len(m.recent) > keptMessages {
			m.recent = m.recent[len(m.recent)-keptMessages:]
		}
		if m.hold && problem {
			if len(m.held) == heldMessages {
				m.held = append(m.held[:0], m.held[1:]...)
			}
			m.held = append(m.held, line)
		}
	}
	if m.hold {
		return len(p), nil
	}
	return m.w.Write(p)
}

// latest returns the status lines, oldest first: the newest warnings and
// errors, then the newest other messages in the lines left, at most
// recentMessages in all.
func (m *messages) latest() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	chosen := make([]bool, len(m.recent))
	n := 0
	for _, problems := range []bool{true, false} {
		for i := len(m.recent) - 1; i >= 0 && n < recentMessages; i-- {
			if m.recent[i].problem == problems {
				chosen[i] = true
				n++
			}
		}
	}
	var lines []string
	for i, msg := range m.recent {
		if chosen[i] {
			lines = append(lines, msg.line)
		}
	}
	return lines
}

// holdWhileLive keeps warnings and errors for the end of the live view.
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
	m.hold, m.held = false, nil
}
