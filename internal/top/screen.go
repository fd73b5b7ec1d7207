package top

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// screen shows the frames of the live view.
type screen interface {
	// height is the number of lines a frame may use, 0 for no limit.
	height() int
	draw(lines []string)
	// close ends the live view; what is written afterwards stays.
	close()
}

// newScreen redraws in place when out is a terminal, else prints blocks.
func newScreen(out *os.File) screen {
	if fd := int(out.Fd()); term.IsTerminal(fd) {
		return &termScreen{w: out, fd: fd}
	}
	return &plainScreen{w: out}
}

// plainScreen prints each frame as a block of text, blocks separated by
// a blank line, for pipes and logs.
type plainScreen struct {
	w      io.Writer
	drawn  bool
	closed bool
}

func (*plainScreen) height() int { return 0 }

func (s *plainScreen) draw(lines []string) {
	var b strings.Builder
	if s.drawn {
		b.WriteString("\n")
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	fmt.Fprint(s.w, b.String())
	s.drawn = true
}

// close separates the last block from what follows.
func (s *plainScreen) close() {
	if s.drawn && !s.closed {
		fmt.Fprint(s.w, "\n")
	}
	s.closed = true
}

// termScreen redraws in place on the terminal's alternate screen (as top
// and less do), so the shell's screen comes back untouched at the end,
// followed by the final table. Lines are cut to the terminal's width.
type termScreen struct {
	w      io.Writer
	fd     int
	active bool
}

const (
	enterAlt  = "\x1b[?1049h\x1b[?25l" // alternate screen, hide cursor
	leaveAlt  = "\x1b[?25h\x1b[?1049l" // show cursor, normal screen
	home      = "\x1b[H"
	eraseLine = "\x1b[K"
	eraseDown = "\x1b[J"
)

func (s *termScreen) size() (width, height int) {
	w, h, err := term.GetSize(s.fd)
	if err != nil || w <= 0 || h <= 0 {
		return 80, 24
	}
	return w, h
}

func (s *termScreen) height() int {
	_, h := s.size()
	return h
}

// draw writes the frame in one write: home, each line over the old one,
// then erase what is left below.
func (s *termScreen) draw(lines []string) {
	width, height := s.size()
	var b strings.Builder
	if !s.active {
		b.WriteString(enterAlt)
		s.active = true
	}
	b.WriteString(home)
	for i, l := range lines {
		if i == height {
			break
		}
		if len(l) > width {
			l = l[:width]
		}
		b.WriteString(l + eraseLine)
		if i < len(lines)-1 && i < height-1 {
			b.WriteString("\r\n")
		}
	}
	b.WriteString(eraseDown)
	fmt.Fprint(s.w, b.String())
}

func (s *termScreen) close() {
	if s.active {
		fmt.Fprint(s.w, leaveAlt)
		s.active = false
	}
}
