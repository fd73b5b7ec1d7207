package testproc

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// Proc is a process under test.
type Proc struct {
	Cmd *exec.Cmd
	// Stdin is a pipe to the process's stdin, unless the command came
	// with a Stdin of its own (then nil).
	Stdin io.WriteCloser
	// Stderr is all the process wrote to stderr so far.
	Stderr *SyncBuffer
	// EachLine, if set, checks every line of stdout that WaitFor and
	// GatherUntil read.
	EachLine func(t testing.TB, line string)

	lines  chan string   // stdout, unless the command came with a Stdout
	quit   chan struct{} // closed at cleanup: the stdout reader stops
	exited chan struct{} // closed once the process has exited
	err    error         // of Wait, once exited is closed
}

// Start starts cmd. Its stdin is a pipe (Stdin) unless cmd.Stdin is set;
// its stdout is read line by line (WaitFor, GatherUntil) unless cmd.Stdout
// is set; its stderr goes to Stderr. At cleanup the process is killed if
// it is still running, waited for, and its stderr logged.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, Stderr: &SyncBuffer{}, quit: make(chan struct{}), exited: make(chan struct{})}
	cmd.Stderr = p.Stderr
	if cmd.Stdin == nil {
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.Stdin = stdin
	}
	// Our own pipe rather than StdoutPipe: Wait does not close it, so no
	// line written before the process exits is lost.
	var stdout *os.File
	if cmd.Stdout == nil {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, cmd.Stdout = r, w
		defer w.Close() // the child has its own copy
		p.lines = make(chan string, 1024)
	}
	if err := cmd.Start(); err != nil {
		if stdout != nil {
			stdout.Close()
		}
		t.Fatal(err)
	}
	if stdout != nil {
		go p.readLines(stdout)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // normally exited already
		<-p.exited
		close(p.quit)
		t.Logf("stderr of %s:\n%s", strings.Join(cmd.Args, " "), p.Stderr)
	})
	return p
}

// readLines sends the lines of r to p.lines until r ends or the test is
// over.
func (p *Proc) readLines(r *os.File) {
	defer r.Close()
	defer close(p.lines)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		select {
		case p.lines <- sc.Text():
		case <-p.quit:
			return
		}
	}
}

// WaitStderr waits until stderr holds want.
func (p *Proc) WaitStderr(t testing.TB, timeout time.Duration, want string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(p.Stderr.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr has no %q after %s:\n%s", want, timeout, p.Stderr)
		}
	}
}

// Exit waits for the process to exit and returns its exit code; it fails
// the test if the process is still running after timeout.
func (p *Proc) Exit(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return testnet.ExitCode(p.err)
	case <-time.After(timeout):
		t.Fatalf("still running %s later", timeout)
		return -1
	}
}
