package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/parsers/influx"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// buildBinary builds the command once per test binary run.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "xdp_udp_ports-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "xdp_udp_ports")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the binary: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is the binary running inside a namespace.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	done   chan error
}

// syncBuffer is a bytes.Buffer a test reads while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startBinary(t *testing.T, ns, config string, args ...string) *proc {
	t.Helper()
	return startProc(t, testnet.Command(ns, binPath, append([]string{"-config", config}, args...)...))
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
	pr := &proc{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), stderr: &syncBuffer{}, done: make(chan error, 1)}
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

// waitFor reads line protocol until a metric satisfies ok.
func (pr *proc) waitFor(t *testing.T, timeout time.Duration, ok func(telegraf.Metric) bool) telegraf.Metric {
	t.Helper()
	parser := &influx.Parser{}
	if err := parser.Init(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(timeout)
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
			requireSortedFields(t, line)
			if ok(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no matching metric within %s; stderr:\n%s", timeout, pr.stderr)
		}
	}
}

// requireSortedFields fails unless the fields of a line of line protocol
// (no spaces in the measurement, tags or field values) are sorted by key,
// as Telegraf's influx_sort_fields writes them.
func requireSortedFields(t *testing.T, line string) {
	t.Helper()
	parts := strings.Split(line, " ")
	if len(parts) != 3 {
		t.Fatalf("line %q: want measurement,tags fields timestamp", line)
	}
	var keys []string
	for _, f := range strings.Split(parts[1], ",") {
		key, _, _ := strings.Cut(f, "=")
		keys = append(keys, key)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("fields not sorted by name: %q", line)
	}
}

// waitStderr waits until stderr holds want.
func (pr *proc) waitStderr(t *testing.T, timeout time.Duration, want string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(pr.stderr.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr has no %q after %s:\n%s", want, timeout, pr.stderr)
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

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin.conf")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pluginConfig(t *testing.T, iface string) string {
	return writeConfig(t, fmt.Sprintf("[[inputs.xdp_udp_ports]]\n  interfaces = [%q]\n  xdp_mode = \"native\"\n", iface))
}

func portIs(port string, packets int64) func(telegraf.Metric) bool {
	return func(m telegraf.Metric) bool {
		p, _ := m.GetTag("port")
		v, _ := m.GetField("packets")
		return m.Name() == "xdp_udp_ports" && p == port && v == packets
	}
}

func TestBinaryStopsWhenStdinCloses(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	pr := startBinary(t, p.Receiver, pluginConfig(t, p.ReceiverIf), "-poll_interval", "100ms")
	pr.waitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
	p.MustSend(t,
		testnet.Datagrams{Dst: p.ReceiverV4, Port: 5353, Count: 17, Payload: 20},
		testnet.Datagrams{Dst: p.ReceiverV6, Port: 5353, Count: 3, Payload: 20},
		testnet.Datagrams{Dst: p.ReceiverV6, Port: 443, Count: 5, Payload: 20},
	)
	m := pr.waitFor(t, 5*time.Second, portIs("5353", 20))
	wantBytes := int64(17*testnet.FrameLen(p.ReceiverV4, 20) + 3*testnet.FrameLen(p.ReceiverV6, 20))
	if b, _ := m.GetField("bytes"); b != wantBytes {
		t.Errorf("port 5353 bytes %v, want %d", b, wantBytes)
	}
	pr.waitFor(t, 5*time.Second, portIs("443", 5))

	start := time.Now()
	pr.stdin.Close()
	if code := pr.exit(t, 2*time.Second); code != 0 {
		t.Fatalf("exit code %d after stdin closed; stderr:\n%s", code, pr.stderr)
	}
	t.Logf("exited %s after stdin closed", time.Since(start))
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
}

func TestBinaryStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := testnet.NewPair(t, testnet.Options{})
			pr := startBinary(t, p.Receiver, pluginConfig(t, p.ReceiverIf), "-poll_interval", "100ms")
			pr.waitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
			if err := pr.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := pr.exit(t, 2*time.Second); code != 0 {
				t.Fatalf("exit code %d after %v; stderr:\n%s", code, sig, pr.stderr)
			}
			testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
		})
	}
}

// bpf_link semantics: the kernel detaches when the process dies, even by
// SIGKILL.
func TestBinaryKilledLeavesNothing(t *testing.T) {
	for _, tc := range []struct{ name, config string }{
		{"xdp", `xdp_mode = "native"`},
		{"tcx both directions", `directions = ["ingress", "egress"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testnet.NewPair(t, testnet.Options{})
			cfg := writeConfig(t, fmt.Sprintf("[[inputs.xdp_udp_ports]]\n  interfaces = [%q]\n  %s\n", p.ReceiverIf, tc.config))
			pr := startBinary(t, p.Receiver, cfg, "-poll_interval", "100ms")
			pr.waitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
			if ours := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); len(ours) == 0 {
				t.Fatal("not attached")
			}
			if err := pr.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			pr.exit(t, 2*time.Second)
			deadline := time.Now().Add(2 * time.Second)
			for len(testnet.OurPrograms(t, p.Receiver, p.ReceiverIf)) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("still attached 2s after SIGKILL: %v", testnet.OurPrograms(t, p.Receiver, p.ReceiverIf))
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestBinaryPinThenUnpin(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	pins := filepath.Join(testnet.MountBPFFS(t), "pins")
	cfg := writeConfig(t, fmt.Sprintf("[[inputs.xdp_udp_ports]]\n  interfaces = [%q]\n  pin_path = %q\n", p.ReceiverIf, pins))
	pr := startBinary(t, p.Receiver, cfg, "-poll_interval", "100ms")
	pr.waitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
	// While it runs, unpin refuses and removes nothing.
	out, err := exec.Command(binPath, "unpin", "-config", cfg).CombinedOutput()
	if testnet.ExitCode(err) != 1 || !strings.HasPrefix(string(out), "E! ") ||
		!strings.Contains(string(out), pins+" is in use by another running xdp_udp_ports instance (pid "+strconv.Itoa(pr.cmd.Process.Pid)+")") {
		t.Errorf("unpin while the owner runs: %v: %s; want exit 1 naming %s and pid %d", err, out, pins, pr.cmd.Process.Pid)
	}
	if ours := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); len(ours) != 1 {
		t.Fatalf("after the refused unpin our programs are %v, want the running one", ours)
	}
	if err := pr.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := pr.exit(t, 2*time.Second); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, pr.stderr)
	}
	// ingress_hook "auto" counts at TC on a veth.
	if ours := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); len(ours) != 1 || ours[0].Hook != "tcx/ingress" {
		t.Fatalf("after exit our programs are %v, want the pinned one at tcx/ingress", ours)
	}
	out, err = exec.Command(binPath, "unpin", "-config", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("unpin: %v: %s", err, out)
	}
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(pins)
		t.Errorf("%s left behind after unpin: %v %v", pins, err, entries)
	}
}

// On kernels without XDP bpf_link (forced here) a SIGKILL leaves the
// program attached; the next start replaces that program of its own and
// a clean stop detaches.
func TestBinaryNetlinkFallbackAfterKill(t *testing.T) {
	t.Setenv("XDP_UDP_PORTS_NETLINK_ATTACH", "1")
	p := testnet.NewPair(t, testnet.Options{})
	cfg := pluginConfig(t, p.ReceiverIf)
	pr := startBinary(t, p.Receiver, cfg, "-poll_interval", "100ms")
	pr.waitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
	if err := pr.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	pr.exit(t, 2*time.Second)
	stale, _ := testnet.XDPProgID(p.Receiver, p.ReceiverIf)
	if stale == 0 {
		t.Fatal("netlink attachment gone after SIGKILL; expected it to stay until the next start")
	}

	pr = startBinary(t, p.Receiver, cfg, "-poll_interval", "100ms")
	pr.waitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 69, Count: 4, Payload: 4})
	pr.waitFor(t, 5*time.Second, portIs("69", 4))
	if now, _ := testnet.XDPProgID(p.Receiver, p.ReceiverIf); now == stale || now == 0 {
		t.Errorf("program %d attached, want a new one replacing the stale %d", now, stale)
	}
	if !strings.Contains(pr.stderr.String(), "left attached by an earlier run") {
		t.Errorf("no warning about the replaced program; stderr:\n%s", pr.stderr)
	}
	pr.stdin.Close()
	if code := pr.exit(t, 2*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
}
