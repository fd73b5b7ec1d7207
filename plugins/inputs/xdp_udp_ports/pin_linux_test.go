package xdp_udp_ports

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/testutil"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// portPackets returns the packets of one destination port series.
func portPackets(ms []telegraf.Metric, port string) int64 {
	for _, m := range ms {
		if p, _ := m.GetTag("port"); m.Name() == measurementPorts && p == port {
			v, _ := m.GetField("packets")
			return v.(int64)
		}
	}
	return 0
}

// pinnedHooks are the attachments pin_path keeps: tcx and XDP links, and
// programs attached through netlink or as clsact filters.
var pinnedHooks = []struct {
	name, hook string
	env        string
}{
	{"tcx", "tc", ""},
	{"tc-filter", "tc", "XDP_UDP_PORTS_LEGACY_TC"},
	{"xdp-link", "xdp", ""},
	{"xdp-netlink", "xdp", "XDP_UDP_PORTS_NETLINK_ATTACH"},
}

func TestPinnedRestartCountsWhileStopped(t *testing.T) {
	for _, h := range pinnedHooks {
		t.Run(h.name, func(t *testing.T) {
			if h.env != "" {
				t.Setenv(h.env, "1")
			}
			pinnedRestart(t, h.hook)
		})
	}
}

func pinnedRestart(t *testing.T, hook string) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	pins := filepath.Join(testnet.MountBPFFS(t), "xdp")
	configure := func(x *XDPUDPPorts) { x.PinPath, x.IngressHook = pins, hook }
	send := func(n int) { p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: n, Payload: 8}) }

	first := newPlugin(t, configure, p.ReceiverIf)
	start(t, first)
	send(10)
	if got := portPackets(gatherSettled(t, first), "53"); got != 10 {
		t.Fatalf("port 53: %d packets, want 10", got)
	}
	first.Stop()
	id := ourID(t, p, p.ReceiverIf)
	if id == 0 {
		t.Fatal("with pin_path the program must stay attached after Stop")
	}
	for _, dir := range []string{pins, filepath.Join(pins, p.ReceiverIf), filepath.Join(pins, p.ReceiverIf, "ingress")} {
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, mode %v; want a 0700 directory", dir, err, st.Mode().Perm())
		}
	}

	send(5) // while no plugin runs

	second := newPlugin(t, configure, p.ReceiverIf)
	acc := start(t, second)
	if got := portPackets(gatherSettled(t, second), "53"); got != 15 {
		t.Fatalf("port 53 after restart: %d packets, want 15 (10 before, 5 while stopped)", got)
	}
	if now := ourID(t, p, p.ReceiverIf); now != id {
		t.Errorf("program id %d after restart, want the adopted %d", now, id)
	}
	if len(errorsOf(acc)) != 0 {
		t.Errorf("errors: %v", errorsOf(acc))
	}
	second.Stop()

	// Another allow-list does not fit the pinned counters: replaced, counts restart.
	third := newPlugin(t, func(x *XDPUDPPorts) { configure(x); x.Ports = []string{"53"} }, p.ReceiverIf)
	acc = start(t, third)
	send(2)
	if got := portPackets(gatherSettled(t, third), "53"); got != 2 {
		t.Fatalf("port 53 with another configuration: %d packets, want 2 (restarted)", got)
	}
	if len(errorsOf(acc)) != 0 {
		t.Errorf("errors: %v", errorsOf(acc))
	}
	third.Stop()
	if now := ourID(t, p, p.ReceiverIf); now == id || now == 0 {
		t.Errorf("program id %d: want a new pinned program, not %d and not none", now, id)
	}
}

// A pin_path has one owner at a time: a second instance (another
// Telegraf, `telegraf --test` with the same or another configuration)
// fails Start naming the directory and the owner's pid, and touches
// nothing of the owner's; the owner's counts stay exact. Once the owner
// has stopped, the next instance adopts what it pinned.
func TestPinPathOneOwner(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	pins := filepath.Join(testnet.MountBPFFS(t), "xdp")
	send := func(n int) { p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: n, Payload: 8}) }
	owner := newPlugin(t, func(x *XDPUDPPorts) { x.PinPath = pins }, p.ReceiverIf)
	start(t, owner)
	send(10)
	id := ourID(t, p, p.ReceiverIf)
	for _, tc := range []struct {
		name      string
		configure func(*XDPUDPPorts)
	}{
		{"same config", func(x *XDPUDPPorts) { x.PinPath = pins }},
		{"other config", func(x *XDPUDPPorts) { x.PinPath, x.Ports = pins, []string{"53"} }},
	} {
		second := newPlugin(t, tc.configure, p.ReceiverIf)
		err := second.Start(&testutil.Accumulator{})
		if err == nil {
			second.Stop()
			t.Fatalf("%s: a second instance started on a pin_path in use", tc.name)
		}
		t.Logf("%s: %v", tc.name, err)
		for _, want := range []string{"pin_path", pins, "in use", "pid " + strconv.Itoa(os.Getpid())} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, want)
			}
		}
		if now := ourID(t, p, p.ReceiverIf); now != id {
			t.Errorf("%s: program %d after the second start, want the owner's %d", tc.name, now, id)
		}
	}
	send(5)
	if got := portPackets(gatherSettled(t, owner), "53"); got != 15 {
		t.Errorf("owner's port 53: %d packets, want 15", got)
	}
	owner.Stop()
	next := newPlugin(t, func(x *XDPUDPPorts) { x.PinPath = pins }, p.ReceiverIf)
	start(t, next)
	send(1)
	if got := portPackets(gatherSettled(t, next), "53"); got != 16 {
		t.Errorf("after the owner stopped: port 53 %d packets, want 16 (adopted)", got)
	}
}

// helperEnv makes TestHelperProcess run a plugin, configured by the JSON
// of helperConfig it holds, until killed: a process of its own for tests
// that kill one (SIGKILL runs no cleanup).
const helperEnv = "XDP_UDP_PORTS_TEST_HELPER"

type helperConfig struct {
	Interface string
	PinPath   string
}

func TestHelperProcess(t *testing.T) {
	var cfg helperConfig
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &cfg); err != nil {
		return // not a helper process: nothing to do
	}
	plugin := newPlugin(t, func(x *XDPUDPPorts) { x.PinPath = cfg.PinPath }, cfg.Interface)
	start(t, plugin)
	fmt.Println("running")
	select {}
}

// startHelper runs TestHelperProcess with cfg (and this process's
// environment) and returns once its plugin has started.
func startHelper(t *testing.T, cfg helperConfig) *exec.Cmd {
	t.Helper()
	enc, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(enc))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // normally killed by the test already
		_ = cmd.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "running\n" {
		t.Fatalf("helper process: %q, %v", line, err)
	}
	return cmd
}

// An owner that dies (SIGKILL) releases pin_path with it: the next
// instance adopts the pinned counters and program, which counted on.
func TestPinOwnerKilled(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	pins := filepath.Join(testnet.MountBPFFS(t), "xdp")
	cmd := startHelper(t, helperConfig{Interface: p.ReceiverIf, PinPath: pins})
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: 4, Payload: 8})
	early := newPlugin(t, func(x *XDPUDPPorts) { x.PinPath = pins }, p.ReceiverIf)
	if err := early.Start(&testutil.Accumulator{}); err == nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("start while the owner lives: %v, want an error naming pid %d", err, cmd.Process.Pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // "signal: killed"
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: 3, Payload: 8})
	next := newPlugin(t, func(x *XDPUDPPorts) { x.PinPath = pins }, p.ReceiverIf)
	acc := start(t, next)
	if got := portPackets(gatherSettled(t, next), "53"); got != 7 {
		t.Errorf("after the owner was killed: port 53 %d packets, want 7 (4 + 3, adopted)", got)
	}
	requireNoErrors(t, acc)
}
