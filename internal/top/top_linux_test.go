package top

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

// binPath is the command, built once per test binary run: the live tests
// run `xdp_udp_ports top` as users do.
var binPath string

func TestMain(m *testing.M) { testproc.Main(m, &binPath) }

// nativeXDP counts ingress with native XDP; without it a veth is counted
// at TC (tcx), ingress_hook = "auto".
const nativeXDP = `xdp_mode = "native"`

// topTraffic is what the live tests send: 5353 is named in the test's
// services file, 443 only for tcp there (so it shows without a name).
func topTraffic(p *testnet.Pair) []testnet.Datagrams {
	return []testnet.Datagrams{
		{Dst: p.ReceiverV4, Port: 5353, Count: 17, Payload: 20},
		{Dst: p.ReceiverV6, Port: 5353, Count: 3, Payload: 20},
		{Dst: p.ReceiverV6, Port: 443, Count: 5, Payload: 100},
	}
}

// portRow is a port's exact totals, as both tables must show them.
type portRow struct {
	dir            string // in the DIR column ("in", "out"); "" without one (ingress)
	port, service  string
	packets, bytes int
	share          string // in the final table
}

func expectedRows(p *testnet.Pair, named bool) []portRow {
	rows := []portRow{
		{port: "5353", service: "mdns", packets: 20, bytes: 17*testnet.FrameLen(p.ReceiverV4, 20) + 3*testnet.FrameLen(p.ReceiverV6, 20), share: "80.0%"},
		{port: "443", packets: 5, bytes: 5 * testnet.FrameLen(p.ReceiverV6, 100), share: "20.0%"},
	}
	if !named {
		rows[0].service = ""
	}
	return rows
}

func servicesFile(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "services")
	if err := os.WriteFile(path, []byte("mdns\t5353/udp\t# Multicast DNS\nhttps\t443/tcp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rowPattern matches a port row: the live table has packets/s and bits/s
// before the totals and a share bar after them, the final table only the
// totals and the share.
func rowPattern(iface string, r portRow, final bool) *regexp.Regexp {
	service := ""
	if r.service != "" {
		service = regexp.QuoteMeta(r.service) + `\s+`
	}
	if r.dir != "" {
		iface += `\s+` + r.dir
	}
	if final {
		return regexp.MustCompile(fmt.Sprintf(`^%s\s+%s\s+%s%d\s+%d\s+%s$`, iface, r.port, service, r.packets, r.bytes, regexp.QuoteMeta(r.share)))
	}
	return regexp.MustCompile(fmt.Sprintf(`^%s\s+%s\s+%s(\S+)\s+\S+\s+%d\s+%d\s+\[[# ]{%d}\]\s+\d+%%$`, iface, r.port, service, r.packets, r.bytes, barWidth))
}

// movingRow reports whether a live row of r shows a packet rate above 0.
func movingRow(lines []string, iface string, r portRow) bool {
	re := rowPattern(iface, r, false)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil && m[1] != "0" {
			return true
		}
	}
	return false
}

// findRows returns the line index of each row in lines, -1 where none
// matches.
func findRows(lines []string, iface string, rows []portRow, final bool) []int {
	idx := make([]int, len(rows))
	for i, r := range rows {
		re := rowPattern(iface, r, final)
		idx[i] = slices.IndexFunc(lines, re.MatchString)
	}
	return idx
}

// checkFinal checks the totals table that ends the output: every port
// sent to, exact, most packets first, and the interface's exact UDP count
// in each direction, at the hook given by DIR ("in", "out").
func checkFinal(t *testing.T, out string, p *testnet.Pair, rows []portRow, hooks map[string]string) {
	t.Helper()
	start := strings.Index(out, "xdp_udp_ports top - totals over ")
	if start < 0 {
		t.Fatalf("no totals table in\n%s", out)
	}
	final := strings.Split(out[start:], "\n")
	idx := findRows(final, p.ReceiverIf, rows, true)
	for i, r := range rows {
		if idx[i] < 0 {
			t.Errorf("totals table has no row %s\n%s", rowPattern(p.ReceiverIf, r, true), out[start:])
		}
	}
	if !slices.IsSorted(idx) {
		t.Errorf("totals not sorted by packets: rows at %v\n%s", idx, out[start:])
	}
	udp, udpBytes := map[string]int{}, map[string]int{}
	for _, r := range rows {
		dir := cmp.Or(r.dir, "in")
		udp[dir], udpBytes[dir] = udp[dir]+r.packets, udpBytes[dir]+r.bytes
	}
	for dir, hook := range hooks {
		iface := regexp.MustCompile(fmt.Sprintf(`(?m)^%s\s+%s\s+%s\s+\d+\s+\d+\s+%d\s+%d\s+0\s+\d+\s+0$`, p.ReceiverIf, dir, hook, udp[dir], udpBytes[dir]))
		if !iface.MatchString(out[start:]) {
			t.Errorf("no interface totals row %s in\n%s", iface, out[start:])
		}
	}
	if n := strings.Count(out[start:], "\n"+p.ReceiverIf+" "); n != len(rows)+len(hooks) {
		t.Errorf("%d rows of %s in the totals, want %d ports and %d directions", n, p.ReceiverIf, len(rows), len(hooks))
	}
}

// Not a terminal: one plain block per interval, then the totals, with and
// without a services file; at native XDP and, by default on a veth, at TC.
func TestTopPlain(t *testing.T) {
	for _, c := range []struct {
		name    string
		named   bool
		options []string
		hook    string
	}{
		{"services file, native XDP", true, []string{nativeXDP}, "xdp_native"},
		{"no services file, default hook", false, nil, "tcx"},
	} {
		named := c.named
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := testnet.NewPair(t, testnet.Options{})
			svc := filepath.Join(t.TempDir(), "absent")
			if named {
				svc = servicesFile(t)
			}
			pt := startPiped(t, p, "-config", testproc.PluginConfig(t, p.ReceiverIf, c.options...),
				"-interval", "500ms", "-duration", "3s", "-services", svc)
			// After the first block, the baseline reading is taken: the
			// traffic shows as a rate in a later block.
			attached := "interfaces: " + p.ReceiverIf + " (" + c.hook + ")"
			pt.waitOut(t, 5*time.Second, func(out string) bool { return strings.Contains(out, attached) })
			p.MustSend(t, topTraffic(p)...)
			if code := pt.exit(t, 10*time.Second); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
			out, live := pt.clean(t)
			if n := strings.Count(strings.Join(live, "\n"), attached); n < 2 {
				t.Errorf("%d live blocks with %q, want at least 2", n, attached)
			}
			rows := expectedRows(p, named)
			for i, at := range findRows(live, p.ReceiverIf, rows, false) {
				if at < 0 {
					t.Errorf("no live block has the row %s", rowPattern(p.ReceiverIf, rows[i], false))
				}
				if !movingRow(live, p.ReceiverIf, rows[i]) {
					t.Errorf("no live block shows port %s with packets/s above 0", rows[i].port)
				}
			}
			checkFinal(t, out, p, rows, map[string]string{"in": c.hook})
		})
	}
}

// pipedTop is `xdp_udp_ports top` run in the receiver namespace with its
// output to pipes, as in a script or a log.
type pipedTop struct {
	*testproc.Proc
	stdout testproc.SyncBuffer
	start  time.Time
}

// startPiped starts top with args; at cleanup it is killed if still
// running, and its output logged.
func startPiped(t *testing.T, p *testnet.Pair, args ...string) *pipedTop {
	t.Helper()
	pt := &pipedTop{}
	// Registered first, so run last: after the process is gone.
	t.Cleanup(func() { t.Logf("stdout of top:\n%s", &pt.stdout) })
	cmd := testnet.Command(p.Receiver, binPath, append([]string{"top"}, args...)...)
	cmd.Stdout = &pt.stdout
	pt.start = time.Now()
	pt.Proc = testproc.Start(t, cmd)
	return pt
}

// waitOut waits until ok accepts stdout.
func (pt *pipedTop) waitOut(t *testing.T, timeout time.Duration, ok func(stdout string) bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !ok(pt.stdout.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stdout not as awaited within %s:\n%s\nstderr:\n%s", timeout, &pt.stdout, pt.Stderr)
		}
	}
}

// exit waits at most timeout for top to exit and returns its exit code.
func (pt *pipedTop) exit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	code := pt.Exit(t, timeout)
	t.Logf("ran %s", time.Since(pt.start).Round(time.Millisecond))
	return code
}

// clean checks that the output of an exited top has no escape sequences
// and stderr no warning or error; it returns stdout and the lines of its
// live blocks.
func (pt *pipedTop) clean(t *testing.T) (string, []string) {
	t.Helper()
	out := pt.stdout.String()
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape sequences in plain output")
	}
	if errOut := pt.Stderr.String(); strings.Contains(errOut, "E!") || strings.Contains(errOut, "W!") {
		t.Errorf("errors on stderr:\n%s", errOut)
	}
	return out, strings.Split(out[:max(strings.Index(out, "xdp_udp_ports top - totals over "), 0)], "\n")
}

// bothWays is the config of the tests counting both directions, at the
// default hook: tcx on a veth. Its max_ports would fold all ports but one
// per direction into port="other" in Telegraf; top shows each.
func bothWays(t *testing.T, p *testnet.Pair) string {
	return testproc.PluginConfig(t, p.ReceiverIf, `directions = ["ingress", "egress"]`, "max_ports = 1")
}

// backTraffic is sent from the receiver: egress where top runs. 5353 is
// sent to both ways: the directions must not merge.
func backTraffic(p *testnet.Pair) []testnet.Datagrams {
	return []testnet.Datagrams{
		{Dst: p.SenderV4, Port: 5353, Count: 8, Payload: 30},
		{Dst: p.SenderV6, Port: 123, Count: 4, Payload: 48},
	}
}

// bothWaysRows are the exact totals of topTraffic and backTraffic, in the
// final table's order (most packets first).
func bothWaysRows(p *testnet.Pair) []portRow {
	rows := expectedRows(p, true)
	for i := range rows {
		rows[i].dir = "in"
	}
	return []portRow{
		rows[0],
		{dir: "out", port: "5353", service: "mdns", packets: 8, bytes: 8 * testnet.FrameLen(p.SenderV4, 30), share: "66.7%"},
		rows[1],
		{dir: "out", port: "123", packets: 4, bytes: 4 * testnet.FrameLen(p.SenderV6, 48), share: "33.3%"},
	}
}

// Both directions counted, piped: the header names the hook of each, a
// summary line per direction, the DIR column; live blocks and totals show
// each direction's exact counts, 5353 once per direction.
func TestTopBothDirections(t *testing.T) {
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	pt := startPiped(t, p, "-config", bothWays(t, p), "-interval", "300ms", "-services", servicesFile(t))
	attached := "interfaces: " + p.ReceiverIf + " (ingress tcx, egress tcx)"
	pt.waitOut(t, 5*time.Second, func(out string) bool { return strings.Contains(out, attached) })
	p.MustSend(t, topTraffic(p)...)
	p.MustSendBack(t, backTraffic(p)...)
	rows := bothWaysRows(p)
	pt.waitOut(t, 5*time.Second, func(out string) bool {
		return !slices.Contains(findRows(strings.Split(out, "\n"), p.ReceiverIf, rows, false), -1)
	})
	if err := pt.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := pt.exit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
	out, live := pt.clean(t)
	header := regexp.MustCompile(`^IFACE\s+DIR\s+PORT\s+SERVICE\s+PKT/S\s+BIT/S\s+PACKETS\s+BYTES\s+SHARE$`)
	if !slices.ContainsFunc(live, header.MatchString) {
		t.Errorf("no live table headed %s", header)
	}
	for _, dir := range []string{"in:  ", "out: "} {
		if !slices.ContainsFunc(live, func(l string) bool { return strings.HasPrefix(l, dir+"udp ") }) {
			t.Errorf("no summary line starting %q", dir+"udp ")
		}
	}
	for _, r := range rows {
		if !movingRow(live, p.ReceiverIf, r) {
			t.Errorf("no live block shows %s port %s with packets/s above 0", r.dir, r.port)
		}
	}
	checkFinal(t, out, p, rows, map[string]string{"in": "tcx", "out": "tcx"})
}

// Traffic both ways after the first reading and just before the end, with
// no reading between: every port's first packets come as the plugin's
// leading zero in the last Gather, and top gathers again, so the totals
// are exact. On a terminal, where the first frame says the first reading
// is done.
func TestTopTotalsOfLastMoment(t *testing.T) {
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	tm := newTmux(t)
	cmd := testnet.Command(p.Receiver, binPath, "top", "-config", bothWays(t, p), "-interval", "1h", "-services", servicesFile(t))
	tm.run("new-session", "-d", "-s", "top", "-x", "100", "-y", "30")
	tm.run("set-option", "-t", "top", "remain-on-exit", "on")
	tm.respawn("top", append([]string{cmd.Path}, cmd.Args[1:]...)...)
	attached := "interfaces: " + p.ReceiverIf + " (ingress tcx, egress tcx)"
	tm.waitScreen(5*time.Second, "first frame", func(s string) bool { return strings.Contains(s, attached) })

	before := udpNoPorts(t, p.Receiver)
	p.MustSend(t, topTraffic(p)...)
	p.MustSendBack(t, backTraffic(p)...) // counted at egress before send returns
	// Ingress is counted in the receiver's softirq, before UDP finds no
	// socket for the datagram.
	sent := 0
	for _, d := range topTraffic(p) {
		sent += d.Count
	}
	for deadline := time.Now().Add(5 * time.Second); udpNoPorts(t, p.Receiver)-before < uint64(sent); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver's UDP NoPorts grew by %d in 5s, want %d", udpNoPorts(t, p.Receiver)-before, sent)
		}
	}

	tm.run("send-keys", "-t", "top", "C-c")
	if status := tm.exitStatus(10 * time.Second); status != "0" {
		t.Errorf("exit status %q, want 0", status)
	}
	screen := tm.run("capture-pane", "-p", "-t", "top", "-S", "-")
	t.Logf("after Ctrl-C:\n%s", screen)
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
	checkFinal(t, screen, p, bothWaysRows(p), map[string]string{"in": "tcx", "out": "tcx"})
}

// udpNoPorts is how many UDP datagrams (IPv4 and IPv6) namespace ns
// received for a port without a socket.
func udpNoPorts(t *testing.T, ns string) uint64 {
	t.Helper()
	var n uint64
	err := testnet.Do(ns, func() error {
		// thread-self: this thread is in ns, the process is not.
		snmp, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		var names []string
		for _, l := range strings.Split(string(snmp), "\n") {
			f := strings.Fields(l)
			if len(f) == 0 || f[0] != "Udp:" {
				continue
			}
			if names == nil {
				names = f
				continue
			}
			if i := slices.Index(names, "NoPorts"); i > 0 && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					return err
				}
				n += v
			}
		}
		snmp6, err := os.ReadFile("/proc/thread-self/net/snmp6")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(snmp6), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "Udp6NoPorts" {
				v, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					return err
				}
				n += v
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tmux runs a private tmux server (its own socket, no config file). At
// cleanup the server is killed, which hangs up what runs in it, and the
// test waits for those processes to be gone before the namespaces go.
type tmux struct {
	t      *testing.T
	socket string
	pids   []int
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		testnet.SkipOrFail(t, "needs tmux: %v", err)
	}
	tm := &tmux{t: t, socket: filepath.Join(t.TempDir(), "tmux.sock")}
	t.Cleanup(func() {
		_ = exec.Command("tmux", "-S", tm.socket, "kill-server").Run() // fails if already gone
		for _, pid := range tm.pids {
			waitGone(t, pid, 10*time.Second)
		}
	})
	return tm
}

// respawn runs args in the session's pane, instead of its shell.
func (tm *tmux) respawn(session string, args ...string) {
	tm.t.Helper()
	tm.run(append([]string{"respawn-pane", "-k", "-t", session}, args...)...)
	pid, err := strconv.Atoi(strings.TrimSpace(tm.run("display-message", "-p", "-t", session, "#{pane_pid}")))
	if err != nil {
		tm.t.Fatal(err)
	}
	tm.pids = append(tm.pids, pid)
}

// waitGone waits until pid has exited (a zombie has), else kills it.
func waitGone(t *testing.T, pid int, timeout time.Duration) {
	stat := fmt.Sprintf("/proc/%d/stat", pid)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return
		}
		// pid (comm) state ...
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return
		}
	}
	t.Errorf("pid %d still running %s after its tmux server was killed; killing it", pid, timeout)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Errorf("killing pid %d: %v", pid, err)
	}
}

func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tm.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitScreen captures the pane (with its history) until ok accepts it.
func (tm *tmux) waitScreen(timeout time.Duration, what string, ok func(screen string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		screen := tm.run("capture-pane", "-p", "-t", "top", "-S", "-")
		if ok(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("%s: not within %s; the pane shows:\n%s", what, timeout, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// On a terminal: the live table redrawn in place shows the ports being
// sent to; Ctrl-C detaches and leaves the totals table on the screen.
func TestTopTerminal(t *testing.T) {
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	tm := newTmux(t)
	cmd := testnet.Command(p.Receiver, binPath, "top", "-config", testproc.PluginConfig(t, p.ReceiverIf, nativeXDP),
		"-interval", "200ms", "-services", servicesFile(t))
	tm.run("new-session", "-d", "-s", "top", "-x", "100", "-y", "30")
	tm.run("set-option", "-t", "top", "remain-on-exit", "on")
	tm.respawn("top", append([]string{cmd.Path}, cmd.Args[1:]...)...)
	start := time.Now()

	// The first frame comes after the baseline reading.
	attached := "interfaces: " + p.ReceiverIf + " (xdp_native)"
	tm.waitScreen(5*time.Second, "first frame", func(s string) bool { return strings.Contains(s, attached) })
	p.MustSend(t, topTraffic(p)...)
	rows := expectedRows(p, true)
	screen := tm.waitScreen(5*time.Second, "live table with the ports sent to", func(s string) bool {
		lines := strings.Split(s, "\n")
		return slices.Contains(lines, attached) && !slices.Contains(findRows(lines, p.ReceiverIf, rows, false), -1)
	})
	t.Logf("live view:\n%s", screen)

	tm.run("send-keys", "-t", "top", "C-c")
	status := tm.exitStatus(10 * time.Second)
	screen = tm.run("capture-pane", "-p", "-t", "top", "-S", "-")
	t.Logf("ran %s; after Ctrl-C:\n%s", time.Since(start).Round(time.Millisecond), screen)
	if status != "0" {
		t.Errorf("exit status %q, want 0", status)
	}
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
	if strings.Contains(screen, "by packets/s") {
		t.Errorf("the live view is still on the screen after Ctrl-C")
	}
	checkFinal(t, screen, p, rows, map[string]string{"in": "xdp_native"})
}

// exitStatus waits until the process last respawned in the pane has
// exited and returns its status as pane_dead_status shows it.
// The pane is dead when the process has closed the terminal; its exit
// status is there once tmux has reaped it. Under load tmux sometimes
// leaves the exited process a zombie for many seconds (seen with tmux
// 3.3a): its exit status is then read from /proc.
func (tm *tmux) exitStatus(timeout time.Duration) string {
	tm.t.Helper()
	var status string
	pid := tm.pids[len(tm.pids)-1]
	for deadline := time.Now().Add(timeout); status == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("not exited within %s; the pane shows:\n%s", timeout, tm.run("capture-pane", "-p", "-t", "top", "-S", "-"))
		}
		dead := strings.Split(strings.TrimSpace(tm.run("display-message", "-p", "-t", "top", "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}")), "|")
		switch {
		case len(dead) != 3:
			tm.t.Fatalf("tmux pane_dead|pane_dead_status|pane_dead_signal: %q", dead)
		case dead[2] != "":
			status = "signal " + dead[2]
		case dead[1] != "":
			status = dead[1]
		default:
			status = zombieStatus(pid)
		}
	}
	return status
}

// zombieStatus returns the exit status of pid if it has exited and is
// waiting to be reaped (a zombie), as pane_dead_status would show it:
// the exit code, or "signal N". Otherwise "".
func zombieStatus(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, exit_code (as waitpid reports it) field 52.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 50 || fields[0] != "Z" {
		return ""
	}
	code, err := strconv.Atoi(fields[49])
	if err != nil {
		return ""
	}
	ws := syscall.WaitStatus(code)
	if ws.Signaled() {
		return fmt.Sprintf("signal %d", ws.Signal())
	}
	return strconv.Itoa(ws.ExitStatus())
}

// offloadConfig makes the plugin fail on iface and go on: veths cannot
// offload XDP programs, so nothing is ever attached.
func offloadConfig(t *testing.T, iface string) string {
	return testproc.PluginConfig(t, iface, `xdp_mode = "offload"`)
}

// offloadError is how the plugin says it.
const offloadError = ": attaching the xdp program at ingress in offload mode"

// Nothing attached, not a terminal: the blocks say "none attached" and
// why (the plugin's error), the error is on stderr too, and top exits 1.
func TestTopPlainNothingAttached(t *testing.T) {
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	pt := startPiped(t, p, "-config", offloadConfig(t, p.ReceiverIf), "-interval", "200ms", "-duration", "1s")
	if code := pt.exit(t, 10*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	reason := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d E! interface ` + p.ReceiverIf + regexp.QuoteMeta(offloadError))
	out := pt.stdout.String()
	if !strings.Contains(out, "interfaces: none attached (watching "+p.ReceiverIf+")") || !reason.MatchString(out) {
		t.Errorf("the blocks do not say none attached and why (%s)", reason)
	}
	if !strings.Contains(out, "no interface attached") {
		t.Errorf("the totals do not say no interface attached")
	}
	last := "E! no interface was attached (watching " + p.ReceiverIf + ")\n"
	if errOut := pt.Stderr.String(); !strings.Contains(errOut, "E! interface "+p.ReceiverIf+offloadError) || !strings.HasSuffix(errOut, last) {
		t.Errorf("stderr does not have the plugin's error and end with %q", last)
	}
}

// Nothing attached, on a terminal: the error from Start is in the live
// view (it was written before the view began, then hidden by it), and
// after Ctrl-C top exits 1.
func TestTopTerminalNothingAttached(t *testing.T) {
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	tm := newTmux(t)
	cmd := testnet.Command(p.Receiver, binPath, "top", "-config", offloadConfig(t, p.ReceiverIf), "-interval", "200ms")
	tm.run("new-session", "-d", "-s", "top", "-x", "100", "-y", "30")
	tm.run("set-option", "-t", "top", "remain-on-exit", "on")
	tm.respawn("top", append([]string{cmd.Path}, cmd.Args[1:]...)...)
	none := "interfaces: none attached (watching " + p.ReceiverIf + ")"
	reason := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d E! interface ` + p.ReceiverIf + regexp.QuoteMeta(offloadError))
	screen := tm.waitScreen(5*time.Second, "live view saying none attached and why", func(s string) bool {
		return strings.Contains(s, none) && strings.Contains(s, "by packets/s") && reason.MatchString(s)
	})
	t.Logf("live view:\n%s", screen)
	tm.run("send-keys", "-t", "top", "C-c")
	if status := tm.exitStatus(10 * time.Second); status != "1" {
		t.Errorf("exit status %q, want 1; the pane shows:\n%s", status, tm.run("capture-pane", "-p", "-t", "top", "-S", "-"))
	}
}
