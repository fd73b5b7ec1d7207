//go:build e2e && linux

package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

const database = "xdp_e2e"

// group is a batch of identical datagrams from the sender.
type group struct {
	v6      bool
	dst     int
	src     int
	count   int
	payload int
}

// traffic is the known mix: IPv4 and IPv6, four destination ports, every
// count different, fixed source ports (so source counting is exact too).
var traffic = []group{
	{v6: false, dst: 53, src: 40053, count: 3, payload: 32},
	{v6: true, dst: 53, src: 40053, count: 4, payload: 32},
	{v6: false, dst: 123, src: 40123, count: 11, payload: 48},
	{v6: true, dst: 5353, src: 41000, count: 17, payload: 100},
	{v6: false, dst: 8125, src: 40125, count: 23, payload: 200},
	{v6: true, dst: 8125, src: 40125, count: 2, payload: 10},
}

// Raw frames sent besides the datagrams (frames.go).
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
}

var variants = []variant{
	{
		name:      "execd",
		execd:     true,
		xdpMode:   "auto",
		wantMode:  "native",
		portRoles: []string{"destination"},
	},
	{
		name:      "builtin",
		xdpMode:   "generic",
		wantMode:  "generic",
		portRoles: []string{"destination", "source"},
		ports:     []string{"53", "5353", "40000-40999"},
	},
}

// TestTelegrafInfluxDB runs every variant: influxd, Telegraf and the plugin
// in the receiving namespace, the known mix sent from the other one, the
// counts read back from InfluxDB after Telegraf has stopped.
func TestTelegrafInfluxDB(t *testing.T) {
	testnet.Require(t)
	b := findBinaries(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { runVariant(t, b, v) })
	}
}

func runVariant(t *testing.T, b binaries, v variant) {
	dir := t.TempDir()
	p := testnet.NewPair(t, testnet.Options{})

	db := startInfluxd(t, b, p.Receiver, dir)

	telegrafBin := b.telegrafXDP
	if v.execd {
		telegrafBin = b.telegraf
	}
	conf := writeTelegrafConf(t, b, v, p.ReceiverIf, dir)
	tg := startProcess(t, p.Receiver, "telegraf", filepath.Join(dir, "telegraf.log"),
		telegrafBin, "--config", conf)

	// Counting starts when the program is attached: wait for it.
	progID := waitXDP(t, p, tg)
	t.Logf("XDP program %d attached to %s", progID, p.ReceiverIf)
	var pluginPID int
	if v.execd {
		pluginPID = findChild(t, tg.pid(), "xdp_udp_ports")
		t.Logf("plugin process %d", pluginPID)
	}

	sendMix(t, p)
	want := expectedPorts(v, p.ReceiverIf)

	// Wait until InfluxDB holds the final counts, then stop Telegraf.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := db.ports()
		if err == nil && equalPorts(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB never reached the expected per-port counts (last error %v):\n%s",
				err, diffPorts(got, want))
		}
		time.Sleep(250 * time.Millisecond)
	}

	if code := tg.stop(t, 10*time.Second); code != 0 {
		t.Errorf("telegraf exited with %d after SIGTERM, want 0", code)
	}
	if pluginPID != 0 {
		waitGone(t, pluginPID, "xdp_udp_ports", 5*time.Second)
	}
	testnet.RequireNoXDP(t, p.Receiver, p.ReceiverIf)

	// Read back after the stop: exact per-port counts ...
	got, err := db.ports()
	if err != nil {
		t.Fatal(err)
	}
	if !equalPorts(got, want) {
		t.Errorf("per-port counts in InfluxDB after Telegraf stopped:\n%s", diffPorts(got, want))
	}
	// ... and the interface summary.
	checkSummary(t, db, v, p.ReceiverIf)
	db.checkDataDir(t)
	checkLog(t, tg, "E! [outputs.influxdb]", "E! [agent]")
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

// sendMix sends the datagrams and the raw frames from the sender namespace.
func sendMix(t *testing.T, p *testnet.Pair) {
	t.Helper()
	for _, g := range traffic {
		dst := p.ReceiverV4
		if g.v6 {
			dst = p.ReceiverV6
		}
		p.MustSend(t, testnet.Datagrams{Dst: dst, Port: g.dst, SrcPort: g.src, Count: g.count, Payload: g.payload})
	}
	if err := p.SendFrames(rawFrames(p)...); err != nil {
		t.Fatal(err)
	}
}

func (g group) frameLen() int64 {
	dst := net.IPv4(192, 0, 2, 2)
	if g.v6 {
		dst = net.ParseIP("2001:db8::2")
	}
	return int64(testnet.FrameLen(dst, g.payload))
}

// portKey identifies one series of the xdp_udp_ports measurement.
type portKey struct{ iface, role, port string }

type counter struct{ packets, bytes int64 }

// expectedPorts is what the plugin must report for traffic under v.
func expectedPorts(v variant, iface string) map[portKey]counter {
	want := map[portKey]counter{}
	for _, role := range v.portRoles {
		for _, g := range traffic {
			port := g.dst
			if role == "source" {
				port = g.src
			}
			k := portKey{iface, role, bucket(v.ports, port)}
			c := want[k]
			c.packets += int64(g.count)
			c.bytes += int64(g.count) * g.frameLen()
			want[k] = c
		}
	}
	return want
}

// bucket is the port tag of port under an allow-list ("other" if unlisted).
func bucket(allow []string, port int) string {
	if len(allow) == 0 {
		return strconv.Itoa(port)
	}
	for _, a := range allow {
		lo, hi, found := strings.Cut(a, "-")
		if !found {
			hi = lo
		}
		l, _ := strconv.Atoi(lo)
		h, _ := strconv.Atoi(hi)
		if port >= l && port <= h {
			return strconv.Itoa(port)
		}
	}
	return "other"
}

func equalPorts(got, want map[portKey]counter) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			return false
		}
	}
	return true
}

func diffPorts(got, want map[portKey]counter) string {
	var buf bytes.Buffer
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			fmt.Fprintf(&buf, "  %+v: missing, want %+v\n", k, w)
		case g != w:
			fmt.Fprintf(&buf, "  %+v: got %+v, want %+v\n", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&buf, "  %+v: unexpected %+v\n", k, g)
		}
	}
	return buf.String()
}

// checkSummary asserts the xdp_udp_ports_interface series: udp_* and
// malformed exactly; packets and other_packets through the invariant
// (IPv6 link-local chatter of the sender may add "other" frames).
func checkSummary(t *testing.T, db *influxDB, v variant, iface string) {
	t.Helper()
	rows, err := db.summary()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("want one xdp_udp_ports_interface series, got %d: %+v", len(rows), rows)
	}
	s := rows[0]
	if s.iface != iface || s.mode != v.wantMode {
		t.Errorf("summary tags interface=%q xdp_mode=%q, want %q and %q", s.iface, s.mode, iface, v.wantMode)
	}
	var udpPackets, udpBytes int64
	for _, g := range traffic {
		udpPackets += int64(g.count)
		udpBytes += int64(g.count) * g.frameLen()
	}
	f := s.fields
	exact := map[string]int64{
		"udp_packets":       udpPackets,
		"udp_bytes":         udpBytes,
		"udp_fragments":     fragmentFrames,
		"malformed_packets": malformedFrames,
	}
	for name, w := range exact {
		if f[name] != w {
			t.Errorf("summary %s = %d, want %d", name, f[name], w)
		}
	}
	if f["other_packets"] < otherFrames {
		t.Errorf("summary other_packets = %d, want at least the %d frames sent", f["other_packets"], otherFrames)
	}
	if sum := f["udp_packets"] + f["udp_fragments"] + f["other_packets"] + f["malformed_packets"]; f["packets"] != sum {
		t.Errorf("summary packets = %d, want udp_packets + udp_fragments + other_packets + malformed_packets = %d", f["packets"], sum)
	}
	if min := udpBytes + rawBytes(); f["bytes"] < min {
		t.Errorf("summary bytes = %d, want at least the %d sent", f["bytes"], min)
	}
	t.Logf("summary: %v", f)
}

func writeTelegrafConf(t *testing.T, b binaries, v variant, iface, dir string) string {
	t.Helper()
	pluginConf := filepath.Join(dir, "xdp_udp_ports.conf")
	var plugin bytes.Buffer
	render(t, "xdp_udp_ports.conf.tmpl", &plugin, map[string]any{
		"Interface": iface, "XDPMode": v.xdpMode, "PortRoles": v.portRoles, "Ports": v.ports,
	})
	if err := os.WriteFile(pluginConf, plugin.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	render(t, "telegraf.conf.tmpl", &conf, map[string]any{
		"Database": database, "Execd": v.execd, "Plugin": b.plugin,
		"PluginConf": pluginConf, "PluginTable": plugin.String(),
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

// waitXDP waits until the receiver's veth end has an XDP program.
func waitXDP(t *testing.T, p *testnet.Pair, tg *process) uint32 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, err := testnet.XDPProgID(p.Receiver, p.ReceiverIf)
		if err != nil {
			t.Fatal(err)
		}
		if id != 0 {
			return id
		}
		if tg.exited() {
			t.Fatalf("telegraf exited before the plugin attached")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no XDP program on %s 30 s after telegraf started", p.ReceiverIf)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
