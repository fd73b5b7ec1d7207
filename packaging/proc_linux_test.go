//go:build package

package packaging

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/parsers/influx"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// proc is the installed binary running as Telegraf's execd runs it with
// signal = "STDIN": it gathers when a line arrives on its stdin.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *strings.Builder
	done   chan error
}

// startProc starts cmd, collects its stdout lines and stderr, and kills
// it at cleanup if still running.
func startProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr := &proc{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), stderr: &strings.Builder{}, done: make(chan error, 1)}
	cmd.Stderr = pr.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			pr.lines <- sc.Text()
		}
		close(pr.lines)
	}()
	exited := make(chan struct{})
	go func() { pr.done <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // normally exited already
		<-exited
		t.Logf("stderr of %s:\n%s", strings.Join(cmd.Args, " "), pr.stderr)
	})
	return pr
}

// gatherUntil asks for a gather (a line on stdin, as Telegraf does at each
// interval) every 200 ms and reads line protocol until a metric satisfies
// ok. A new series may first be reported with zero counts; later gathers
// carry its real values.
func (pr *proc) gatherUntil(t *testing.T, timeout time.Duration, ok func(telegraf.Metric) bool) telegraf.Metric {
	t.Helper()
	parser := &influx.Parser{}
	if err := parser.Init(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(timeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := io.WriteString(pr.stdin, "\n"); err != nil {
			t.Fatalf("writing to stdin: %v; stderr:\n%s", err, pr.stderr)
		}
	read:
		for {
			select {
			case line, open := <-pr.lines:
				if !open {
					t.Fatalf("stdout closed; stderr:\n%s", pr.stderr)
				}
				m, err := parser.ParseLine(line)
				if err != nil {
					t.Fatalf("stdout line %q is not line protocol: %v", line, err)
				}
				if ok(m) {
					return m
				}
			case <-tick.C:
				break read
			case <-deadline:
				t.Fatalf("no matching metric within %s; stderr:\n%s", timeout, pr.stderr)
			}
		}
	}
}

// exit waits for the process to exit and returns its exit code.
func (pr *proc) exit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-pr.done:
		return testnet.ExitCode(err)
	case <-time.After(timeout):
		t.Fatalf("still running %s later", timeout)
		return -1
	}
}

// creds are a process's real uid and capability sets.
type creds struct {
	uid                    string
	capInh, capEff, capAmb uint64
}

func procCreds(t *testing.T, pid int) creds {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var c creds
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		var dst *uint64
		switch k {
		case "Uid":
			c.uid = f[0]
		case "CapInh":
			dst = &c.capInh
		case "CapEff":
			dst = &c.capEff
		case "CapAmb":
			dst = &c.capAmb
		}
		if dst != nil {
			if *dst, err = strconv.ParseUint(f[0], 16, 64); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// Capability numbers (linux/capability.h) of wantCaps.
const (
	capNetAdmin = 12
	capPerfmon  = 38
	capBPF      = 39
)

const wantCapMask uint64 = 1<<capBPF | 1<<capNetAdmin | 1<<capPerfmon
