//go:build linux

package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// execd is the execd binary running in a namespace on a config of its
// own, as Telegraf's execd with signal = "STDIN" runs it: it gathers when
// a line arrives on its stdin (-poll_interval_disabled) and stops when
// stdin closes.
type execd struct {
	cmd   *exec.Cmd
	start time.Time
	stdin io.WriteCloser
	// summaries gets one value per xdp_udp_ports_interface line on stdout
	// (one per interface and direction per Gather); closed at EOF.
	summaries chan struct{}
	done      chan error // the result of Wait, once
	stderr    strings.Builder
	stopOnce  sync.Once
	stopErr   error
}

// startExecd writes conf (the plugin's TOML table) to a file and starts
// bin on it in namespace ns. It is stopped at cleanup if the caller has
// not stopped it.
func startExecd(t testing.TB, bin, ns, conf string) (*execd, error) {
	path := filepath.Join(t.TempDir(), "xdp_udp_ports.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	e := &execd{
		cmd:       testnet.Command(ns, bin, "-config", path, "-poll_interval_disabled"),
		summaries: make(chan struct{}, 1024),
		done:      make(chan error, 1),
	}
	var err error
	if e.stdin, err = e.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := e.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	e.cmd.Stderr = &e.stderr
	e.start = time.Now()
	if err := e.cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := e.stop(); err != nil {
			t.Errorf("stopping the binary at cleanup: %v", err)
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "xdp_udp_ports_interface,") {
				e.summaries <- struct{}{}
			}
		}
		close(e.summaries)
	}()
	go func() { e.done <- e.cmd.Wait() }()
	return e, nil
}

// exited returns the binary's exit error if it has ended, else nil, false.
func (e *execd) exited() (error, bool) {
	select {
	case err := <-e.done:
		e.done <- err
		return err, true
	default:
		return nil, false
	}
}

// gather asks for one Gather and waits for n summary lines.
func (e *execd) gather(n int) error {
	if _, err := io.WriteString(e.stdin, "\n"); err != nil {
		return fmt.Errorf("asking for a Gather: %w", err)
	}
	for range n {
		select {
		case _, ok := <-e.summaries:
			if !ok {
				return errors.New("stdout closed before the Gather's metrics")
			}
		case <-time.After(30 * time.Second):
			return errors.New("no Gather within 30 s")
		}
	}
	return nil
}

// stop closes stdin (a clean stop) and waits at most 10 s for the
// binary to exit, then kills it. It is idempotent.
func (e *execd) stop() error {
	e.stopOnce.Do(func() {
		e.stdin.Close()
		select {
		case err := <-e.done:
			e.done <- err
			e.stopErr = err
		case <-time.After(10 * time.Second):
			_ = e.cmd.Process.Signal(syscall.SIGKILL)
			e.stopErr = fmt.Errorf("did not stop within 10 s of its stdin closing (killed: %v)", <-e.done)
		}
	})
	return e.stopErr
}

// fail stops the binary and returns err with its stderr.
func (e *execd) fail(err error) error {
	if serr := e.stop(); serr != nil {
		err = fmt.Errorf("%w; stopping: %v", err, serr)
	}
	return fmt.Errorf("%w; stderr:\n%s", err, e.stderr.String())
}

// waitHooks waits until every interface in ns carries exactly hooks
// (checkHooks), for at most 30 s from the binary's start, and returns the
// time from exec to then.
func (e *execd) waitHooks(ns string, ifaces []string, hooks ...string) (time.Duration, error) {
	deadline := e.start.Add(30 * time.Second)
	for {
		if err, ok := e.exited(); ok {
			return 0, fmt.Errorf("exited early: %v", err)
		}
		// The last interface is attached last: check it alone until it is.
		if checkHooks(ns, ifaces[len(ifaces)-1:], hooks...) == nil {
			if err := checkHooks(ns, ifaces, hooks...); err == nil {
				return time.Since(e.start), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not attached at %v to all %d interfaces after 30 s: %v", hooks, len(ifaces), checkHooks(ns, ifaces, hooks...))
		}
		time.Sleep(2 * time.Millisecond)
	}
}
