package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

// binPath is the command, built once per test binary run.
var binPath string

func TestMain(m *testing.M) { testproc.Main(m, &binPath) }

// startBinary runs the binary in namespace ns with config and args.
func startBinary(t *testing.T, ns, config string, args ...string) *testproc.Proc {
	t.Helper()
	return startProc(t, testnet.Command(ns, binPath, append([]string{"-config", config}, args...)...))
}

// startProc starts cmd, a run of the binary; every line of its stdout that
// is read must have its fields sorted.
func startProc(t *testing.T, cmd *exec.Cmd) *testproc.Proc {
	t.Helper()
	pr := testproc.Start(t, cmd)
	pr.EachLine = requireSortedFields
	return pr
}

// requireSortedFields fails unless the fields of a line of line protocol
// (no spaces in the measurement, tags or field values) are sorted by key,
// as Telegraf's influx_sort_fields writes them.
func requireSortedFields(t testing.TB, line string) {
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

func pluginConfig(t *testing.T, iface string) string {
	return testproc.PluginConfig(t, iface, `xdp_mode = "native"`)
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
	pr.WaitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
	p.MustSend(t,
		testnet.Datagrams{Dst: p.ReceiverV4, Port: 5353, Count: 17, Payload: 20},
		testnet.Datagrams{Dst: p.ReceiverV6, Port: 5353, Count: 3, Payload: 20},
		testnet.Datagrams{Dst: p.ReceiverV6, Port: 443, Count: 5, Payload: 20},
	)
	m := pr.WaitFor(t, 5*time.Second, portIs("5353", 20))
	wantBytes := int64(17*testnet.FrameLen(p.ReceiverV4, 20) + 3*testnet.FrameLen(p.ReceiverV6, 20))
	if b, _ := m.GetField("bytes"); b != wantBytes {
		t.Errorf("port 5353 bytes %v, want %d", b, wantBytes)
	}
	pr.WaitFor(t, 5*time.Second, portIs("443", 5))

	start := time.Now()
	pr.Stdin.Close()
	if code := pr.Exit(t, 2*time.Second); code != 0 {
		t.Fatalf("exit code %d after stdin closed; stderr:\n%s", code, pr.Stderr)
	}
	t.Logf("exited %s after stdin closed", time.Since(start))
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
}

func TestBinaryStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := testnet.NewPair(t, testnet.Options{})
			pr := startBinary(t, p.Receiver, pluginConfig(t, p.ReceiverIf), "-poll_interval", "100ms")
			pr.WaitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
			if err := pr.Cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := pr.Exit(t, 2*time.Second); code != 0 {
				t.Fatalf("exit code %d after %v; stderr:\n%s", code, sig, pr.Stderr)
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
			cfg := testproc.PluginConfig(t, p.ReceiverIf, tc.config)
			pr := startBinary(t, p.Receiver, cfg, "-poll_interval", "100ms")
			pr.WaitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
			if ours := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); len(ours) == 0 {
				t.Fatal("not attached")
			}
			if err := pr.Cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			pr.Exit(t, 2*time.Second)
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
	cfg := testproc.PluginConfig(t, p.ReceiverIf, fmt.Sprintf("pin_path = %q", pins))
	pr := startBinary(t, p.Receiver, cfg, "-poll_interval", "100ms")
	pr.WaitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
	// While it runs, unpin refuses and removes nothing.
	out, err := exec.Command(binPath, "unpin", "-config", cfg).CombinedOutput()
	if testnet.ExitCode(err) != 1 || !strings.HasPrefix(string(out), "E! ") ||
		!strings.Contains(string(out), pins+" is in use by another running xdp_udp_ports instance (pid "+strconv.Itoa(pr.Cmd.Process.Pid)+")") {
		t.Errorf("unpin while the owner runs: %v: %s; want exit 1 naming %s and pid %d", err, out, pins, pr.Cmd.Process.Pid)
	}
	if ours := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); len(ours) != 1 {
		t.Fatalf("after the refused unpin our programs are %v, want the running one", ours)
	}
	if err := pr.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := pr.Exit(t, 2*time.Second); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, pr.Stderr)
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
	pr.WaitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
	if err := pr.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	pr.Exit(t, 2*time.Second)
	stale, _ := testnet.XDPProgID(p.Receiver, p.ReceiverIf)
	if stale == 0 {
		t.Fatal("netlink attachment gone after SIGKILL; expected it to stay until the next start")
	}

	pr = startBinary(t, p.Receiver, cfg, "-poll_interval", "100ms")
	pr.WaitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 69, Count: 4, Payload: 4})
	pr.WaitFor(t, 5*time.Second, portIs("69", 4))
	if now, _ := testnet.XDPProgID(p.Receiver, p.ReceiverIf); now == stale || now == 0 {
		t.Errorf("program %d attached, want a new one replacing the stale %d", now, stale)
	}
	if !strings.Contains(pr.Stderr.String(), "left attached by an earlier run") {
		t.Errorf("no warning about the replaced program; stderr:\n%s", pr.Stderr)
	}
	pr.Stdin.Close()
	if code := pr.Exit(t, 2*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
}
