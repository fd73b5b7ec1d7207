//go:build e2e && linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// database and readmeInterface are the README's: its queries run as
// printed. The receiving veth end is called eth0 inside its namespace.
const (
	database        = "telegraf"
	readmeInterface = "eth0"
)

// group is a batch of identical datagrams: from the sender to the
// receiver (ingress where the plugin counts) or, in egressMix, back.
type group struct {
	v6      bool
	dst     int
	src     int
	count   int
	payload int
	// segment, if set, sends each payload with UDP_SEGMENT: it leaves as
	// ceil(payload/segment) datagrams, which TC counts one by one.
	segment int
}

// mix is the known traffic sent first: IPv4 and IPv6, eleven destination
// ports, fixed source ports (so source counting is exact too), and byte
// counts far enough apart (at least 1.38 times the next smaller) that a
// top 10 is the same even with rate()'s extrapolation.
var mix = []group{
	{v6: false, dst: 53, src: 40053, count: 3, payload: 32},
	{v6: true, dst: 53, src: 40053, count: 4, payload: 32},
	{v6: false, dst: 123, src: 40123, count: 11, payload: 48},
	{v6: true, dst: 5353, src: 41000, count: 17, payload: 100},
	{v6: false, dst: 8125, src: 40125, count: 23, payload: 200},
	{v6: true, dst: 8125, src: 40125, count: 2, payload: 10},
	{v6: false, dst: 2001, src: 40201, count: 1, payload: 18},  // 60 bytes
	{v6: false, dst: 2002, src: 40202, count: 2, payload: 8},   // 100
	{v6: false, dst: 2003, src: 40203, count: 1, payload: 128}, // 170
	{v6: false, dst: 2004, src: 40204, count: 5, payload: 8},   // 250
	{v6: false, dst: 2005, src: 40205, count: 10, payload: 20}, // 620
	{v6: false, dst: 2006, src: 40206, count: 25, payload: 18}, // 1500
	{v6: false, dst: 2007, src: 40207, count: 40, payload: 53}, // 3800
}

// egressMix is sent with the mix, from the receiver's namespace (where
// Telegraf and the plugin run) to the sender: a server's answers from its
// service ports to client ports in 40000-40999 (the built-in variant's
// allow-list), IPv4 and IPv6, and UDP_SEGMENT sends that leave as several
// datagrams each.
var egressMix = []group{
	{v6: false, dst: 40053, src: 53, count: 3, payload: 100},
	{v6: true, dst: 40054, src: 53, count: 4, payload: 120},
	{v6: false, dst: 40123, src: 123, count: 6, payload: 48},                   // source 123: "other" in the built-in variant
	{v6: false, dst: 40500, src: 5060, count: 4, payload: 3000, segment: 1000}, // 12 datagrams
	{v6: true, dst: 40535, src: 5353, count: 2, payload: 2500, segment: 1200},  // 6: 1200, 1200 and 100 bytes each
}

// burst is a new port's first and only traffic, sent once the mix is in.
var burst = []group{{v6: false, dst: 5060, src: 40500, count: 7, payload: 20}}

// later goes to port 53 again after the execd variant's plugin process
// was killed and restarted (the built-in variant gets it too, without a
// restart).
var later = []group{{v6: false, dst: 53, src: 40053, count: 100, payload: 32}}

// Raw frames sent with the mix (frames_test.go).
const (
	fragmentFrames  = 3 // IPv4 UDP, fragment offset > 0
	malformedFrames = 2 // IPv4 header cut short
	otherFrames     = 4 // local experimental EtherType
)

// variant is one way of running the plugin under Telegraf. Both count
// both directions.
type variant struct {
	name    string
	execd   bool   // inputs.execd + bin/xdp_udp_ports, else bin/telegraf-xdp
	xdpMode string // the xdp_mode option; "" leaves it (and ingress_hook) at the default
	// wantHooks is the hook tag each direction must carry on a veth;
	// hooks are where our programs must be (testnet.Program.Hook).
	wantHooks map[string]string
	hooks     []string
	portRoles []string
	ports     []string
	// pinPath: pin_path on a private bpffs; while the variant runs, a
	// `telegraf --test` with another and with the same config must be
	// refused and change nothing.
	pinPath bool
	// wantType is the Prometheus type Telegraf gives the series without
	// prometheus_client's metric_types.
	wantType string
}

var variants = []variant{
	{
		name:      "execd",
		execd:     true,
		wantHooks: map[string]string{dirIngress: "tcx", dirEgress: "tcx"}, // ingress_hook "auto": TC on a veth
		hooks:     []string{"tcx/egress", "tcx/ingress"},
		portRoles: []string{roleDestination},
		wantType:  "untyped", // line protocol carries no type
	},
	{
		name:      "builtin",
		xdpMode:   "generic", // implies ingress_hook = "xdp"
		wantHooks: map[string]string{dirIngress: "xdp_generic", dirEgress: "tcx"},
		hooks:     []string{"tcx/egress", "xdp"},
		portRoles: []string{roleDestination, roleSource},
		ports:     []string{"53", "5353", "5060", "40000-40999"},
		pinPath:   true,
		wantType:  "counter", // the plugin's AddCounter
	},
}

// Gather and scrape timing of the test: the README's Prometheus settings
// (gather 10 s, flush 5 s, scrape 5 s) scaled to a 1 s gather interval.
const (
	gatherInterval = time.Second
	promFlush      = "500ms"
	promScrape     = "500ms"
)

// TestTelegraf runs every variant, in parallel, each in its own pair of
// namespaces: influxd, Prometheus, Telegraf and the plugin in the
// receiving one, the known traffic sent from the other. Telegraf writes to
// InfluxDB and serves Prometheus; the README's InfluxQL and PromQL are run
// against both and must return what the README says.
func TestTelegraf(t *testing.T) {
	testnet.Require(t)
	b := findBinaries(t)
	blocks := readme(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			runVariant(t, b, blocks, v)
		})
	}
}

func runVariant(t *testing.T, b binaries, blocks map[string]string, v variant) {
	start := time.Now()
	dir := t.TempDir()
	p := testnet.NewPair(t, testnet.Options{ReceiverIf: readmeInterface})
	pinDir := ""
	if v.pinPath {
		pinDir = testnet.MountBPFFS(t)
	}

	// influxd and Prometheus start side by side.
	db := startInfluxd(t, b, p.Receiver, dir)
	prom := startPrometheus(t, b, p.Receiver, dir, blocks[blockPromScrape])
	db.waitReady(t)
	prom.waitReady(t)
	// Prometheus scrapes some seconds after it is ready (target
	// discovery): wait for its first attempt, so that it scrapes Telegraf
	// from its first Gather on, the summary's leading 0 included.
	waitFor(t, "Prometheus to scrape", prom.scraping)

	telegrafBin := b.telegrafXDP
	if v.execd {
		telegrafBin = b.telegraf
	}
	conf, pluginConf := writeTelegrafConf(t, b, v, blocks, p.ReceiverIf, dir, pinDir)
	tg := startProcess(t, p.Receiver, "telegraf", filepath.Join(dir, "telegraf.log"),
		telegrafBin, "--config", conf)

	// Counting starts when the programs are attached: wait for them. Every
	// series, the summary's too, starts with 0, so what arrives before the
	// first Gather is in the differences.
	progs := waitAttached(t, p, tg, v, nil)
	t.Logf("programs attached to %s: %v", p.ReceiverIf, progs)
	var pluginPID int
	if v.execd {
		pluginPID = findChild(t, tg.pid(), "xdp_udp_ports", 0)
		t.Logf("plugin process %d", pluginPID)
	}

	l := newLedger(v, p.ReceiverIf)
	sendMix(t, p)
	l.add(dirIngress, mix, true)
	p.MustSendBack(t, datagrams(p, egressMix, true)...)
	l.add(dirEgress, egressMix, false)
	waitPorts(t, db, l)
	waitSummary(t, db, v, l)
	t.Logf("%v: mix counted, both directions", time.Since(start).Round(time.Millisecond))

	if v.pinPath {
		checkPinPathOwned(t, b, p, tg, v, dir, conf, pinDir, progs)
		waitPorts(t, db, l)
		waitSummary(t, db, v, l)
		t.Logf("%v: telegraf --test refused twice, the service's counts unchanged", time.Since(start).Round(time.Millisecond))
	}

	p.MustSend(t, datagrams(p, burst, false)...)
	l.add(dirIngress, burst, false)
	waitPorts(t, db, l)

	if v.execd {
		pluginPID = restartPlugin(t, p, tg, v, pluginPID, progs)
		l.restart()
	}
	p.MustSend(t, datagrams(p, later, false)...)
	l.add(dirIngress, later, false)
	waitPorts(t, db, l)
	waitSummary(t, db, v, l)
	t.Logf("%v: all traffic counted", time.Since(start).Round(time.Millisecond))

	checkPrometheus(t, prom, v, blocks, l)
	t.Logf("%v: Prometheus checked", time.Since(start).Round(time.Millisecond))

	if code := tg.stop(t, 10*time.Second); code != 0 {
		t.Errorf("telegraf exited with %d after SIGTERM, want 0", code)
	}
	if pluginPID != 0 {
		waitGone(t, pluginPID, "xdp_udp_ports", 5*time.Second)
	}
	if v.pinPath {
		// Stop leaves pinned programs attached and counting; unpin
		// detaches them.
		if got := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); len(got) != len(v.hooks) {
			t.Errorf("with pin_path, after Telegraf stopped: our programs %v, want them still at %v", got, v.hooks)
		}
		cmd := testnet.Command(p.Receiver, b.plugin, "unpin", "-config", pluginConf)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("xdp_udp_ports unpin: %v\n%s", err, out)
		}
	}
	testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)

	// Read back after the stop: the newest value of each series ...
	got, err := db.ports()
	if err != nil {
		t.Fatal(err)
	}
	if !equalPorts(got, l.last) {
		t.Errorf("per-port counts in InfluxDB after Telegraf stopped:\n%s", diffPorts(got, l.last))
	}
	// ... every series, the summary's too, starting at 0 ...
	if err := db.firstPointsZero(); err != nil {
		t.Error(err)
	}
	// ... and the README's queries, with curl and with the influx CLI.
	checkInfluxQL(t, p.Receiver, dir, blocks, l)
	db.checkDataDir(t)
	checkLog(t, tg, "E! [outputs.influxdb]", "E! [outputs.prometheus_client]", "E! [agent]")
	t.Logf("%v: done", time.Since(start).Round(time.Millisecond))
}

// waitPorts waits until InfluxDB holds the newest value of every series.
func waitPorts(t *testing.T, db *influxDB, l *ledger) {
	t.Helper()
	waitFor(t, "the per-port counts in InfluxDB", func() error {
		got, err := db.ports()
		if err != nil {
			return err
		}
		if !equalPorts(got, l.last) {
			return fmt.Errorf("\n%s", diffPorts(got, l.last))
		}
		return nil
	})
}

// waitSummary waits until the newest xdp_udp_ports_interface point of
// each direction in InfluxDB holds this plugin process's counts.
func waitSummary(t *testing.T, db *influxDB, v variant, l *ledger) {
	t.Helper()
	waitFor(t, "the summary in InfluxDB", func() error {
		byDir, err := db.summary(v, l.iface)
		if err != nil {
			return err
		}
		for _, dir := range directions {
			if err := checkSummaryFields(byDir[dir], l.runSummary[dir]); err != nil {
				return fmt.Errorf("%s: %w", dir, err)
			}
		}
		return nil
	})
}

// restartPlugin SIGKILLs the execd plugin process and waits until Telegraf
// has started a new one (after restart_delay) and its programs are
// attached. Nothing more: the new process's series start with 0, so what
// arrives before its first Gather is in their differences.
func restartPlugin(t *testing.T, p *testnet.Pair, tg *process, v variant, pid int, old []testnet.Program) int {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid, "xdp_udp_ports", 5*time.Second)
	newPID := findChild(t, tg.pid(), "xdp_udp_ports", pid)
	progs := waitAttached(t, p, tg, v, old)
	t.Logf("plugin process %d killed; Telegraf started %d, programs %v attached", pid, newPID, progs)
	return newPID
}

// waitFor polls check until it succeeds, failing the test after 20 s.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkLog fails the test if the process log has a line containing any of
// the given strings (e.g. a write InfluxDB refused).
func checkLog(t *testing.T, p *process, bad ...string) {
	t.Helper()
	out, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		for _, b := range bad {
			if strings.Contains(line, b) {
				t.Errorf("%s logged: %s", p.name, line)
			}
		}
	}
}

// datagrams turns groups into what Pair.Send sends, or with back what
// Pair.SendBack sends (to the sender's addresses).
func datagrams(p *testnet.Pair, gs []group, back bool) []testnet.Datagrams {
	var ds []testnet.Datagrams
	for _, g := range gs {
		d := g.datagrams()
		switch {
		case back && g.v6:
			d.Dst = p.SenderV6
		case back:
			d.Dst = p.SenderV4
		case g.v6:
			d.Dst = p.ReceiverV6
		default:
			d.Dst = p.ReceiverV4
		}
		ds = append(ds, d)
	}
	return ds
}

// sendMix sends the mix's datagrams and the raw frames from the sender
// namespace.
func sendMix(t *testing.T, p *testnet.Pair) {
	t.Helper()
	p.MustSend(t, datagrams(p, mix, false)...)
	if err := p.SendFrames(rawFrames(p)...); err != nil {
		t.Fatal(err)
	}
}

// writeTelegrafConf writes the plugin's config and telegraf.conf for
// variant v into dir and returns their paths: the plugin's table from
// xdp_udp_ports.conf.tmpl, the execd variant's [[inputs.execd]] and the
// prometheus_client output as the README prints them (paths, restart_delay
// and flush_interval adapted to the test).
func writeTelegrafConf(t *testing.T, b binaries, v variant, blocks map[string]string, iface, dir, pinDir string) (conf, pluginConf string) {
	t.Helper()
	pluginConf = filepath.Join(dir, "xdp_udp_ports.conf")
	plugin := pluginTable(t, v, iface, pinDir, v.ports)
	if err := os.WriteFile(pluginConf, []byte(plugin), 0o644); err != nil {
		t.Fatal(err)
	}
	// The README's prometheus_client table, its flush_interval scaled to
	// the test's gather interval.
	promOutput := replaceOnce(t, blocks[blockTelegrafProm], `flush_interval = "5s"`, `flush_interval = "`+promFlush+`"`)
	// The README's execd snippet, with the test's paths and a short
	// restart_delay for the test that kills the binary.
	execd := blocks[blockTelegrafExecd]
	execd = replaceOnce(t, execd, `"/usr/bin/xdp_udp_ports"`, strconv.Quote(b.plugin))
	execd = replaceOnce(t, execd, `"/etc/xdp_udp_ports/xdp_udp_ports.conf"`, strconv.Quote(pluginConf))
	execd = replaceOnce(t, execd, `restart_delay = "10s"`, `restart_delay = "1s"`)
	var buf bytes.Buffer
	render(t, "telegraf.conf.tmpl", &buf, map[string]any{
		"Database": database, "Execd": v.execd, "ExecdInput": execd, "PluginTable": plugin,
		"Interval": gatherInterval.String(), "PrometheusOutput": promOutput,
		"PrometheusFlush": promFlush, "UntypedListen": untypedListen,
	})
	conf = filepath.Join(dir, "telegraf.conf")
	if err := os.WriteFile(conf, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", conf, buf.String())
	return conf, pluginConf
}

// pluginTable renders the plugin's [[inputs.xdp_udp_ports]] table.
func pluginTable(t *testing.T, v variant, iface, pinDir string, ports []string) string {
	t.Helper()
	var buf bytes.Buffer
	render(t, "xdp_udp_ports.conf.tmpl", &buf, map[string]any{
		"Interface": iface, "Directions": directions, "XDPMode": v.xdpMode,
		"PortRoles": v.portRoles, "Ports": ports, "PinPath": pinDir,
	})
	return buf.String()
}

func render(t *testing.T, name string, w *bytes.Buffer, data any) {
	t.Helper()
	tmpl, err := template.New(name).Option("missingkey=error").ParseFiles(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := tmpl.Execute(w, data); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// waitAttached waits until our programs on the receiver's interface are
// at exactly the variant's hooks, none of them one of old, and returns
// them.
func waitAttached(t *testing.T, p *testnet.Pair, tg *process, v variant, old []testnet.Program) []testnet.Program {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ours := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf)
		var hooks []string
		fresh := true
		for _, pr := range ours {
			hooks = append(hooks, pr.Hook)
			fresh = fresh && !slices.ContainsFunc(old, func(o testnet.Program) bool { return o.ID == pr.ID })
		}
		slices.Sort(hooks)
		if fresh && slices.Equal(hooks, v.hooks) {
			return ours
		}
		if tg.exited() {
			t.Fatalf("telegraf exited before the plugin attached")
		}
		if time.Now().After(deadline) {
			t.Fatalf("our programs on %s after 30 s: %v, want new ones at %v", p.ReceiverIf, ours, v.hooks)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
