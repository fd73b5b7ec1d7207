package top

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/cli"
)

func TestFormats(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{fmtRate(0), "0"}, {fmtRate(0.25), "0.2"}, {fmtRate(9.96), "10.0"}, {fmtRate(42.4), "42"},
		{fmtRate(999), "999"}, {fmtRate(1000), "1.00k"}, {fmtRate(12345), "12.3k"}, {fmtRate(999_499), "999k"},
		{fmtRate(999_500), "1.00M"}, {fmtRate(45.6e9), "45.6G"},
		{fmtCount(0), "0"}, {fmtCount(99_999), "99999"}, {fmtCount(100_000), "100k"}, {fmtCount(1 << 40), "1.10T"},
		{fmtBits(0), "0 bit/s"}, {fmtBits(640), "640 bit/s"}, {fmtBits(1.234e6), "1.23 Mbit/s"},
		{bar(0), "[          ]   0%"}, {bar(0.5), "[#####     ]  50%"}, {bar(1), "[##########] 100%"}, {bar(2), "[##########] 100%"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// twoReadings is a model of eth0 over one second: 53 at 30 pkt/s, 123
// at 10 pkt/s, 9 idle, and the baseline counts.
func twoReadings() *model {
	m := newModel()
	m.update(at(0,
		portPoint("eth0", "destination", "9", 5, 300),
		ifacePoint("eth0", "xdp_native", 5, 0)), time.Time{})
	m.update(at(1,
		portPoint("eth0", "destination", "9", 5, 300),
		portPoint("eth0", "destination", "53", 30, 3000),
		portPoint("eth0", "destination", "123", 10, 900),
		ifacePoint("eth0", "xdp_native", 45, 2)), time.Time{})
	return m
}

func TestLiveLines(t *testing.T) {
	m := twoReadings()
	svc := services{53: "domain"}
	got := liveLines(m, svc, liveOptions{now: m.last, interval: time.Second, rows: 20, status: []string{"12:00:01 E! oops"}})
	want := []string{
		"xdp_udp_ports top - 12:00:01 - up 1s - every 1s",
		"interfaces: eth0 (xdp_native)",
		"udp 40 pkt/s 32.0 kbit/s | fragments 0 pkt/s | other 2.0 pkt/s | malformed 0 pkt/s",
		"",
		"IFACE  PORT  SERVICE  PKT/S  BIT/S  PACKETS  BYTES  SHARE",
		"eth0     53  domain      30  24.0k       30   3000  [########  ]  75%",
		"eth0    123              10  7.20k       10    900  [###       ]  25%",
		"eth0      9               0      0        5    300  [          ]   0%",
		"3 of 3 ports, by packets/s",
		"12:00:01 E! oops",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// -n and the terminal's height both limit the rows.
	if got := liveLines(m, svc, liveOptions{rows: 1}); got[len(got)-1] != "1 of 3 ports, by packets/s" {
		t.Errorf("-n 1: %q", got[len(got)-1])
	}
	if got := liveLines(m, svc, liveOptions{height: 8}); len(got) != 8 || got[len(got)-1] != "2 of 3 ports, by packets/s" {
		t.Errorf("height 8: %d lines, last %q", len(got), got[len(got)-1])
	}
}

func TestLiveLinesSourceAndNoInterface(t *testing.T) {
	m := newModel()
	m.update(nil, t0)
	got := liveLines(m, nil, liveOptions{watching: []string{"veth*"}})
	if got[1] != "interfaces: none attached (watching veth*)" || got[len(got)-1] != "0 of 0 ports, by packets/s" {
		t.Errorf("no interface:\n%s", strings.Join(got, "\n"))
	}
	m.update(at(1, portPoint("eth0", "destination", "53", 1, 1), portPoint("eth0", "source", "40000", 1, 1)), time.Time{})
	got = liveLines(m, nil, liveOptions{})
	if strings.Join(strings.Fields(got[4]), " ") != "IFACE PORT ROLE SERVICE PKT/S BIT/S PACKETS BYTES SHARE" ||
		strings.Join(strings.Fields(got[6]), " ") != "eth0 40000 src 1.0 8.0 1 1 [##########] 100%" {
		t.Errorf("with source ports:\n%s", strings.Join(got, "\n"))
	}
}

func TestFinalLines(t *testing.T) {
	m := twoReadings()
	m.update(at(2.5,
		portPoint("eth0", "destination", "9", 5, 300),
		portPoint("eth0", "destination", "53", 123456, 12345678),
		portPoint("eth0", "destination", "123", 10, 900),
		ifacePoint("eth0", "xdp_native", 123471, 2)), time.Time{})
	got := finalLines(m, services{53: "domain", 123: "ntp"})
	want := []string{
		"xdp_udp_ports top - totals over 2.5s, 12:00:00 to 12:00:02",
		"",
		"IFACE  PORT  SERVICE  PACKETS     BYTES   SHARE",
		"eth0     53  domain    123456  12345678  100.0%",
		"eth0    123  ntp           10       900    0.0%",
		"eth0      9                 5       300    0.0%",
		"",
		"IFACE  DIR  HOOK        PACKETS     BYTES     UDP  UDP_BYTES  FRAGMENTS  OTHER  MALFORMED",
		"eth0   in   xdp_native   123473  12347300  123471   12347100          0      2          0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := finalLines(newModel(), nil); got[2] != "no UDP port counted" || got[4] != "no interface attached" {
		t.Errorf("empty: %q", got)
	}
}

func TestIfaceList(t *testing.T) {
	var list []*ifaceSeries
	for i := range 10 {
		hook := "xdp_native"
		if i%3 == 0 {
			hook = "tcx"
		}
		list = append(list, &ifaceSeries{ifaceKey: ifaceKey{fmt.Sprintf("eth%d", i), dirIngress}, hook: hook, attached: true})
	}
	list[9].attached = false // not listed
	want := "eth0, eth3, eth6 (tcx); eth1, eth2, eth4, eth5, eth7 (xdp_native) and 1 more"
	if got := ifaceList(list, false, nil); got != want {
		t.Errorf("got %q,\nwant %q", got, want)
	}
	// With egress: each interface's hooks per direction.
	s := func(name, dir, hook string, attached bool) *ifaceSeries {
		return &ifaceSeries{ifaceKey: ifaceKey{name, dir}, hook: hook, attached: attached}
	}
	list = []*ifaceSeries{
		s("eth0", dirIngress, "xdp_native", true), s("eth0", dirEgress, "tcx", true),
		s("veth0", dirIngress, "tcx", true), s("veth0", dirEgress, "tcx", true),
		s("veth1", dirIngress, "tcx", true), s("veth1", dirEgress, "tcx", true),
		s("veth2", dirIngress, "tcx", true), s("veth2", dirEgress, "tc", false),
		s("veth3", dirIngress, "tcx", false), s("veth3", dirEgress, "tcx", false),
	}
	want = "eth0 (ingress xdp_native, egress tcx); veth0, veth1 (ingress tcx, egress tcx); veth2 (ingress tcx, egress not attached)"
	if got := ifaceList(list, true, nil); got != want {
		t.Errorf("got %q,\nwant %q", got, want)
	}
	if got, want := ifaceList(list[8:], true, []string{"veth3"}), "none attached (watching veth3)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Egress counted: a DIR column in both port tables, a summary line per
// direction, shares per direction and role, and the interface table's
// rows per direction.
func TestLinesWithEgress(t *testing.T) {
	m := newModel()
	m.update(at(0, ifacePoint("eth0", "tcx", 0, 0), dirIfacePoint("eth0", dirEgress, "tcx", 0, 0)), time.Time{})
	m.update(at(1,
		portPoint("eth0", "destination", "53", 0, 0),
		dirPortPoint("eth0", dirEgress, "destination", "123", 0, 0),
		ifacePoint("eth0", "tcx", 40, 0), dirIfacePoint("eth0", dirEgress, "tcx", 10, 0)), time.Time{})
	m.update(at(2,
		portPoint("eth0", "destination", "53", 30, 3000),
		portPoint("eth0", "destination", "9", 0, 0),
		dirPortPoint("eth0", dirEgress, "destination", "123", 10, 900),
		ifacePoint("eth0", "tcx", 40, 0), dirIfacePoint("eth0", dirEgress, "tcx", 10, 0)), time.Time{})
	m.update(at(3,
		portPoint("eth0", "destination", "53", 30, 3000),
		portPoint("eth0", "destination", "9", 10, 1000),
		dirPortPoint("eth0", dirEgress, "destination", "123", 10, 900),
		ifacePoint("eth0", "tcx", 50, 0), dirIfacePoint("eth0", dirEgress, "tcx", 15, 0)), time.Time{})
	got := liveLines(m, services{53: "domain"}, liveOptions{now: m.last, interval: time.Second})
	want := []string{
		"xdp_udp_ports top - 12:00:03 - up 3s - every 1s",
		"interfaces: eth0 (ingress tcx, egress tcx)",
		"in:  udp 10 pkt/s 8.00 kbit/s | fragments 0 pkt/s | other 0 pkt/s | malformed 0 pkt/s",
		"out: udp 5.0 pkt/s 4.00 kbit/s | fragments 0 pkt/s | other 0 pkt/s | malformed 0 pkt/s",
		"",
		"IFACE  DIR  PORT  SERVICE  PKT/S  BIT/S  PACKETS  BYTES  SHARE",
		"eth0   in      9              10  8.00k       10   1000  [##########] 100%",
		"eth0   in     53  domain       0      0       30   3000  [          ]   0%",
		"eth0   out   123               0      0       10    900  [          ]   0%",
		"3 of 3 ports, by packets/s",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = finalLines(m, services{53: "domain"})
	want = []string{
		"xdp_udp_ports top - totals over 3s, 12:00:00 to 12:00:03",
		"",
		"IFACE  DIR  PORT  SERVICE  PACKETS  BYTES   SHARE",
		"eth0   in     53  domain        30   3000   75.0%",
		"eth0   in      9                10   1000   25.0%",
		"eth0   out   123                10    900  100.0%",
		"",
		"IFACE  DIR  HOOK  PACKETS  BYTES  UDP  UDP_BYTES  FRAGMENTS  OTHER  MALFORMED",
		"eth0   in   tcx        50   5000   50       5000          0      0          0",
		"eth0   out  tcx        15   1500   15       1500          0      0          0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestScreens(t *testing.T) {
	var b bytes.Buffer
	p := &plainScreen{w: &b}
	p.draw([]string{"a", "b"})
	p.draw([]string{"c"})
	p.close()
	if b.String() != "a\nb\n\nc\n\n" {
		t.Errorf("plain: %q", b.String())
	}

	b.Reset()
	ts := &termScreen{w: &b, fd: -1} // not a terminal: 80x24
	ts.draw([]string{strings.Repeat("x", 100), "y"})
	ts.draw([]string{"z"})
	ts.close()
	want := enterAlt + home + strings.Repeat("x", 80) + eraseLine + "\r\ny" + eraseLine + eraseDown +
		home + "z" + eraseLine + eraseDown + leaveAlt
	if b.String() != want {
		t.Errorf("terminal: %q\nwant %q", b.String(), want)
	}
}

func TestMessages(t *testing.T) {
	var b bytes.Buffer
	msgs := &messages{w: &b}
	l := cli.NewLogger(msgs, false)
	l.Infof("attached to %s", "eth0")
	msgs.holdWhileLive()
	l.Info("one")
	(&collector{msgs: msgs}).AddError(fmt.Errorf("interface eth1: refused"))
	l.Warn("three")
	l.Debug("never")
	l.Info("four")
	if got := msgs.latest(); len(got) != 3 || !strings.HasSuffix(got[0], " E! interface eth1: refused") || !strings.HasSuffix(got[2], " I! four") {
		t.Errorf("latest %q", got)
	}
	if b.String() != "I! attached to eth0\n" {
		t.Errorf("written while live: %q", b.String())
	}
	msgs.release()
	if want := "I! attached to eth0\nE! interface eth1: refused\nW! three\n"; b.String() != want {
		t.Errorf("at release: %q, want %q", b.String(), want)
	}
	// Then written at once; warnings and errors stay in the status lines
	// while newer info lines come: the reason nothing is attached stays
	// in view.
	for i := range 5 {
		l.Infof("info %d", i)
	}
	if !strings.HasSuffix(b.String(), "W! three\nI! info 0\nI! info 1\nI! info 2\nI! info 3\nI! info 4\n") {
		t.Errorf("after release: %q", b.String())
	}
	if got := msgs.latest(); len(got) != 3 || !strings.HasSuffix(got[0], " E! interface eth1: refused") ||
		!strings.HasSuffix(got[1], " W! three") || !strings.HasSuffix(got[2], " I! info 4") {
		t.Errorf("latest after infos %q", got)
	}
}
