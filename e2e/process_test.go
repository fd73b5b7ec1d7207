//go:build e2e && linux

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// binaries are the programs under test; make e2e builds them.
type binaries struct {
	plugin      string // bin/xdp_udp_ports
	telegraf    string // bin/telegraf (stock, for execd)
	telegrafXDP string // bin/telegraf-xdp (plugin built in)
	// From Debian (make deps-e2e): influxd, the influx CLI, Prometheus and
	// curl.
	influxd, influx, prometheus, curl string
}

func findBinaries(t *testing.T) binaries {
	t.Helper()
	bin, err := filepath.Abs("../bin")
	if err != nil {
		t.Fatal(err)
	}
	b := binaries{
		plugin:      filepath.Join(bin, "xdp_udp_ports"),
		telegraf:    filepath.Join(bin, "telegraf"),
		telegrafXDP: filepath.Join(bin, "telegraf-xdp"),
	}
	for _, p := range []string{b.plugin, b.telegraf, b.telegrafXDP} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: run the end-to-end test with make e2e, which builds it", err)
		}
	}
	for _, d := range []struct {
		path   *string
		name   string
		debPkg string
	}{
		{&b.influxd, "influxd", "influxdb"},
		{&b.influx, "influx", "influxdb-client"},
		{&b.prometheus, "prometheus", "prometheus"},
		{&b.curl, "curl", "curl"},
	} {
		if *d.path, err = exec.LookPath(d.name); err != nil {
			t.Fatalf("%v: make e2e installs Debian's %s package", err, d.debPkg)
		}
	}
	return b
}

// process is a program started in a namespace. `ip netns exec` execs the
// program itself, so the command's PID is the program's.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // valid after done is closed
}

// startProcess starts name in namespace ns with its output in logPath. At
// cleanup it is stopped (SIGTERM, then SIGKILL) if still running, and its
// log is shown when the test failed.
func startProcess(t *testing.T, ns, name, logPath, path string, args ...string) *process {
	t.Helper()
	return startProcessEnv(t, ns, name, logPath, nil, path, args...)
}

func startProcessEnv(t *testing.T, ns, name, logPath string, env []string, path string, args ...string) *process {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	p := &process{name: name, log: logPath, done: make(chan struct{})}
	p.cmd = testnet.Command(ns, path, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.Stdin = nil
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			p.stop(t, 5*time.Second)
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s log (%s):\n%s", name, logPath, tail(out, 200))
		}
	})
	return p
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs; it returns the
// exit code (-1 when killed by a signal).
func (p *process) stop(t *testing.T, grace time.Duration) int {
	t.Helper()
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			t.Errorf("%s (pid %d) still running %v after SIGTERM, killing it", p.name, p.pid(), grace)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	return testnet.ExitCode(p.err)
}

// findChild returns the PID of parent's child process named comm, other
// than not (0: any).
func findChild(t *testing.T, parent int, comm string, not int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if c, ppid, state, ok := procStat(pid); ok && ppid == parent && c == comm && pid != not && state != "Z" {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no child process %q of pid %d", comm, parent)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGone waits until process pid (named comm) has exited.
func waitGone(t *testing.T, pid int, comm string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, _, state, ok := procStat(pid)
		if !ok || c != comm || state == "Z" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s (pid %d) still running %v after telegraf stopped", comm, pid, timeout)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procStat reads comm, parent PID and state from /proc/PID/stat.
func procStat(pid int) (comm string, ppid int, state string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, "", false
	}
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return "", 0, "", false
	}
	rest := strings.Fields(string(b[close+1:]))
	if len(rest) < 2 {
		return "", 0, "", false
	}
	ppid, _ = strconv.Atoi(rest[1])
	return string(b[open+1 : close]), ppid, rest[0], true
}

func tail(b []byte, lines int) string {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = append([]string{"..."}, s[len(s)-lines:]...)
	}
	return strings.Join(s, "\n")
}
