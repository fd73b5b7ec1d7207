package main

import (
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

// Errors from one interface (acc.AddError), Start's error and config
// errors are all lines Telegraf's execd can level: no timestamp, no
// "Error in plugin" from a shim.
func TestBinaryErrorsAreLevelMarked(t *testing.T) {
	t.Run("one interface fails", func(t *testing.T) {
		p := testnet.NewPair(t, testnet.Options{})
		// veths cannot offload: the plugin reports it and goes on.
		cfg := testproc.PluginConfig(t, p.ReceiverIf, `xdp_mode = "offload"`)
		pr := startBinary(t, p.Receiver, cfg, "-poll_interval", "100ms")
		pr.WaitStderr(t, 5*time.Second, "E! interface "+p.ReceiverIf+": attaching the xdp program at ingress in offload mode")
		pr.Stdin.Close()
		if code := pr.Exit(t, 5*time.Second); code != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", code, pr.Stderr)
		}
		requireLevelMarked(t, pr.Stderr.String())
	})
	t.Run("Start fails", func(t *testing.T) {
		code, _, stderr := runBinary(t, "-config", testproc.WriteConfig(t, "[[inputs.xdp_udp_ports]]\n  interfaces = [\"xdpnone0\"]\n"))
		if code != 1 || !strings.HasPrefix(stderr, `E! interfaces: no such interface "xdpnone0"`) {
			t.Errorf("exit %d, stderr %q: want 1 and the error", code, stderr)
		}
		requireLevelMarked(t, stderr)
	})
	t.Run("bad config", func(t *testing.T) {
		code, _, stderr := runBinary(t, "-config", testproc.WriteConfig(t, "[[inputs.xdp_udp_ports]]\n  interfaces = []\n"))
		if code != 1 || !strings.HasPrefix(stderr, "E! ") {
			t.Errorf("exit %d, stderr %q: want 1 and an E! line", code, stderr)
		}
		requireLevelMarked(t, stderr)
	})
}

// Started without stdin (`cmd &`, nohup, a unit without StandardInput):
// it attaches, says why it stops, detaches and exits 0.
func TestBinaryStdinClosedAtStart(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	cmd := testnet.Command(p.Receiver, binPath, "-config", pluginConfig(t, p.ReceiverIf))
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	cmd.Stdin = devNull
	pr := startProc(t, cmd)
	if code := pr.Exit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, pr.Stderr)
	}
	attached := "I! attached to " + p.ReceiverIf
	stopping := "I! stdin closed; stopping\n"
	out := pr.Stderr.String()
	if i, j := strings.Index(out, attached), strings.Index(out, stopping); i < 0 || j < i {
		t.Errorf("stderr does not say %q, then %q:\n%s", attached, stopping, out)
	}
	requireLevelMarked(t, out)
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
}

// fullPipe returns a pipe of one page whose buffer is already full: a
// process writing to w blocks at once, as when Telegraf stops reading.
func fullPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	raw, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	if err := raw.Control(func(fd uintptr) { size, err = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, os.Getpagesize()) }); err != nil || size <= 0 {
		t.Fatalf("F_SETPIPE_SZ: %d, %v", size, err)
	}
	if err := w.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write(make([]byte, 1<<20)); n != size || !os.IsTimeout(err) {
		t.Fatalf("filling the pipe: wrote %d of %d bytes, %v", n, size, err)
	}
	return r, w
}

var droppedLine = regexp.MustCompile(`(?m)^W! stdout is not read: dropped (\d+) metrics? that could not be written$`)

// With stdout blocked (the pipe full, nobody reading) SIGTERM or the end
// of stdin still stops the plugin - which detaches - and the process
// within a second, dropping what it could not write and saying how much.
// With netlink attachments (kernels before 5.9, forced here) a program is
// only detached if Stop runs: the process dying would leave it attached.
func TestBinaryStopsWithStdoutBlocked(t *testing.T) {
	const limit = time.Second
	for _, attach := range []string{"bpf_link", "netlink"} {
		for _, stop := range []string{"SIGTERM", "stdin closed"} {
			t.Run(attach+"/"+stop, func(t *testing.T) {
				if attach == "netlink" {
					t.Setenv("XDP_UDP_PORTS_NETLINK_ATTACH", "1")
				}
				p := testnet.NewPair(t, testnet.Options{})
				_, w := fullPipe(t)
				cmd := testnet.Command(p.Receiver, binPath, "-config", pluginConfig(t, p.ReceiverIf), "-poll_interval", "10ms")
				cmd.Stdout = w
				pr := startProc(t, cmd)
				pr.WaitStderr(t, 5*time.Second, "I! attached to "+p.ReceiverIf)
				// 100 ports: each Gather has more metrics than the writer
				// queues, so Gather itself waits on stdout.
				var ds []testnet.Datagrams
				for port := 10000; port < 10100; port++ {
					ds = append(ds, testnet.Datagrams{Dst: p.ReceiverV4, Port: port, Count: 1})
				}
				p.MustSend(t, ds...)
				time.Sleep(300 * time.Millisecond) // 30 polls

				start := time.Now()
				var err error
				if stop == "SIGTERM" {
					err = cmd.Process.Signal(syscall.SIGTERM)
				} else {
					err = pr.Stdin.Close()
				}
				if err != nil {
					t.Fatal(err)
				}
				code := pr.Exit(t, 5*time.Second)
				took := time.Since(start)
				t.Logf("exited %s after %s (limit %s)", took.Round(time.Millisecond), stop, limit)
				if code != 0 {
					t.Errorf("exit code %d", code)
				}
				if took > limit {
					t.Errorf("exited %s after %s, want within %s", took.Round(time.Millisecond), stop, limit)
				}
				testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
				out := pr.Stderr.String()
				why := map[string]string{"SIGTERM": "I! got SIGTERM; stopping\n", "stdin closed": "I! stdin closed; stopping\n"}[stop]
				if !strings.Contains(out, why) {
					t.Errorf("stderr does not say %q", why)
				}
				if m := droppedLine.FindStringSubmatch(out); m == nil || m[1] == "0" {
					t.Errorf("stderr does not say how many metrics were dropped (%s)", droppedLine)
				}
				requireLevelMarked(t, out)
			})
		}
	}
}

// When its stdout is closed (Telegraf gone), a write fails: it stops,
// detaches (netlink attachments, so only Stop detaches) and exits 0.
func TestBinaryStopsWhenStdoutCloses(t *testing.T) {
	t.Setenv("XDP_UDP_PORTS_NETLINK_ATTACH", "1")
	p := testnet.NewPair(t, testnet.Options{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd := testnet.Command(p.Receiver, binPath, "-config", pluginConfig(t, p.ReceiverIf), "-poll_interval", "10ms")
	cmd.Stdout = w
	pr := startProc(t, cmd)
	pr.WaitStderr(t, 5*time.Second, "I! attached to "+p.ReceiverIf)
	r.Close()
	if code := pr.Exit(t, 5*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
	if out := pr.Stderr.String(); !strings.Contains(out, "I! writing to stdout: ") || !strings.Contains(out, "broken pipe; stopping\n") {
		t.Errorf("stderr does not say that stdout broke")
	}
	requireLevelMarked(t, pr.Stderr.String())
}
