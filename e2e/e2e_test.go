//go:build e2e && linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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

// group is a batch of identical datagrams from the sender.
type group struct {
	v6      bool
	dst     int
	src     int
	count   int
	payload int
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

// variant is one way of running the plugin under Telegraf.
type variant struct {
	name      string
	execd     bool   // inputs.execd + bin/xdp_udp_ports, else bin/telegraf-xdp
	xdpMode   string // the xdp_mode option
	wantMode  string // the xdp_mode tag it must produce on a veth
	portRoles []string
	ports     []string
	// wantType is the Prometheus type Telegraf gives the series without
	// prometheus_client's metric_types.
	wantType string
}

var variants = []variant{
	{
		name:      "execd",
		execd:     true,
		xdpMode:   "auto",
		wantMode:  "native",
		portRoles: []string{roleDestination},
		wantType:  "untyped", // line protocol carries no type
	},
	{
		name:      "builtin",
		xdpMode:   "generic",
		wantMode:  "generic",
		portRoles: []string{roleDestination, roleSource},
		ports:     []string{"53", "5353", "5060", "40000-40999"},
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

	// influxd and Prometheus start side by side.
	db := startInfluxd(t, b, p.Receiver, dir)
	prom := startPrometheus(t, b, p.Receiver, dir, blocks[blockPromScrape])
	db.waitReady(t)
	prom.waitReady(t)

	telegrafBin := b.telegrafXDP
	if v.execd {
		telegrafBin = b.telegraf
	}
	conf := writeTelegrafConf(t, b, v, blocks, p.ReceiverIf, dir)
	tg := startProcess(t, p.Receiver, "telegraf", filepath.Join(dir, "telegraf.log"),
		telegrafBin, "--config", conf)

	// Counting starts when the program is attached: wait for it, and for
	// the first summary point in InfluxDB and in Prometheus (the summary
	// has no leading 0: traffic before its first point would be missing
	// from its differences; and Prometheus starts scraping a few seconds
	// after it is ready).
	progID := waitXDP(t, p, tg, 0)
	t.Logf("XDP program %d attached to %s", progID, p.ReceiverIf)
	var pluginPID int
	if v.execd {
		pluginPID = findChild(t, tg.pid(), "xdp_udp_ports", 0)
		t.Logf("plugin process %d", pluginPID)
	}
	waitFor(t, "the first summary point in InfluxDB", func() error { return db.summaryPoints(1) })
	waitFor(t, "the first summary sample in Prometheus", prom.scraping)

	l := newLedger(v, p.ReceiverIf)
	sendMix(t, p)
	l.add(mix, true)
	waitPorts(t, db, l)
	waitFor(t, "the summary in InfluxDB", func() error {
		f, err := db.summary(v, p.ReceiverIf)
		if err != nil {
			return err
		}
		return checkSummaryFields(f, l.runSummary)
	})
	t.Logf("%v: mix counted", time.Since(start).Round(time.Millisecond))

	p.MustSend(t, datagrams(p, burst)...)
	l.add(burst, false)
	waitPorts(t, db, l)

	if v.execd {
		pluginPID = restartPlugin(t, p, tg, db, pluginPID)
		l.restart()
	}
	p.MustSend(t, datagrams(p, later)...)
	l.add(later, false)
	waitPorts(t, db, l)
	t.Logf("%v: all traffic counted", time.Since(start).Round(time.Millisecond))

	checkPrometheus(t, prom, v, blocks, l)
	t.Logf("%v: Prometheus checked", time.Since(start).Round(time.Millisecond))

	if code := tg.stop(t, 10*time.Second); code != 0 {
		t.Errorf("telegraf exited with %d after SIGTERM, want 0", code)
	}
	if pluginPID != 0 {
		waitGone(t, pluginPID, "xdp_udp_ports", 5*time.Second)
	}
	testnet.RequireNoXDP(t, p.Receiver, p.ReceiverIf)

	// Read back after the stop: the newest value of each series ...
	got, err := db.ports()
	if err != nil {
		t.Fatal(err)
	}
	if !equalPorts(got, l.last) {
		t.Errorf("per-port counts in InfluxDB after Telegraf stopped:\n%s", diffPorts(got, l.last))
	}
	// ... every series starting at 0 ...
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

// restartPlugin SIGKILLs the execd plugin process and waits until Telegraf
// has started a new one (after restart_delay), its program is attached
// and its first summary point, counting from zero again, is in InfluxDB.
func restartPlugin(t *testing.T, p *testnet.Pair, tg *process, db *influxDB, pid int) int {
	t.Helper()
	oldProg, err := testnet.XDPProgID(p.Receiver, p.ReceiverIf)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid, "xdp_udp_ports", 5*time.Second)
	newPID := findChild(t, tg.pid(), "xdp_udp_ports", pid)
	prog := waitXDP(t, p, tg, oldProg)
	t.Logf("plugin process %d killed; Telegraf started %d, program %d attached", pid, newPID, prog)
	waitFor(t, "the restarted plugin's first summary point", func() error {
		ss, err := db.query(`SELECT last(udp_packets) AS udp_packets FROM xdp_udp_ports_interface`)
		if err != nil {
			return err
		}
		if len(ss) != 1 {
			return fmt.Errorf("%d series", len(ss))
		}
		f, err := ss[0].fields()
		if err != nil {
			return err
		}
		if f["udp_packets"] != 0 {
			return fmt.Errorf("last udp_packets %d, want 0 from the new process", f["udp_packets"])
		}
		return nil
	})
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

// datagrams turns groups into what Pair.Send sends.
func datagrams(p *testnet.Pair, gs []group) []testnet.Datagrams {
	var ds []testnet.Datagrams
	for _, g := range gs {
		dst := p.ReceiverV4
		if g.v6 {
			dst = p.ReceiverV6
		}
		ds = append(ds, testnet.Datagrams{Dst: dst, Port: g.dst, SrcPort: g.src, Count: g.count, Payload: g.payload})
	}
	return ds
}

// sendMix sends the mix's datagrams and the raw frames from the sender
// namespace.
func sendMix(t *testing.T, p *testnet.Pair) {
	t.Helper()
	p.MustSend(t, datagrams(p, mix)...)
	if err := p.SendFrames(rawFrames(p)...); err != nil {
		t.Fatal(err)
	}
}

func writeTelegrafConf(t *testing.T, b binaries, v variant, blocks map[string]string, iface, dir string) string {
	t.Helper()
	pluginConf := filepath.Join(dir, "xdp_udp_ports.conf")
	var plugin bytes.Buffer
	render(t, "xdp_udp_ports.conf.tmpl", &plugin, map[string]any{
		"Interface": iface, "XDPMode": v.xdpMode, "PortRoles": v.portRoles, "Ports": v.ports,
	})
	if err := os.WriteFile(pluginConf, plugin.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The README's prometheus_client table, its flush_interval scaled to
	// the test's gather interval.
	promOutput := replaceOnce(t, blocks[blockTelegrafProm], `flush_interval = "5s"`, `flush_interval = "`+promFlush+`"`)
	var conf bytes.Buffer
	render(t, "telegraf.conf.tmpl", &conf, map[string]any{
		"Database": database, "Execd": v.execd, "Plugin": b.plugin,
		"PluginConf": pluginConf, "PluginTable": plugin.String(),
		"Interval": gatherInterval.String(), "PrometheusOutput": promOutput,
		"PrometheusFlush": promFlush, "UntypedListen": untypedListen,
	})
	path := filepath.Join(dir, "telegraf.conf")
	if err := os.WriteFile(path, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", path, conf.String())
	return path
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

// waitXDP waits until the receiver's veth end has an XDP program other
// than old (0: any).
func waitXDP(t *testing.T, p *testnet.Pair, tg *process, old uint32) uint32 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, err := testnet.XDPProgID(p.Receiver, p.ReceiverIf)
		if err != nil {
			t.Fatal(err)
		}
		if id != 0 && id != old {
			return id
		}
		if tg.exited() {
			t.Fatalf("telegraf exited before the plugin attached")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new XDP program on %s after 30 s", p.ReceiverIf)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
