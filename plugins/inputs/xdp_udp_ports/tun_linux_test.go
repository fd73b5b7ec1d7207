package xdp_udp_ports

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/metric"
	"github.com/influxdata/telegraf/testutil"
	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// tunPackets are IP packets (no link-layer header) to one port.
type tunPackets struct {
	v6    bool
	port  uint16
	count int
	size  int // IP packet bytes
}

func (tp tunPackets) packet() []byte {
	if tp.v6 {
		return frames.IPv6UDP(frames.EthernetLen+tp.size, frames.PortEphemeral, tp.port)[frames.EthernetLen:]
	}
	return frames.IPv4UDP(frames.EthernetLen+tp.size, frames.PortEphemeral, tp.port)[frames.EthernetLen:]
}

// TestTUN counts on a link without an Ethernet header (ARPHRD_NONE, as
// wireguard-go's): frames start at the IP header, the version is the
// first nibble. Both directions, IPv4 and IPv6, exact per port; ingress at
// TC (auto) and at generic XDP (TUN has no native XDP).
func TestTUN(t *testing.T) {
	for _, tc := range []struct{ hook, want string }{{"auto", "tcx"}, {"xdp", "xdp_generic"}} {
		t.Run(tc.hook, func(t *testing.T) {
			p := testnet.NewPair(t, testnet.Options{})
			if !p.RunInReceiver(t) {
				return
			}
			tun := testnet.NewTUN(t, p.Receiver, "xtun0", "198.51.100.1/24", "2001:db8:1::1/64")
			plugin := newPlugin(t, func(x *XDPUDPPorts) {
				x.Directions = []string{"ingress", "egress"}
				x.IngressHook = tc.hook
			}, tun.Name)
			acc := start(t, plugin)

			in := []tunPackets{{false, 53, 20, 100}, {true, 53, 5, 300}, {true, 123, 7, 200}}
			for _, tp := range in {
				for range tp.count {
					if _, err := tun.File.Write(tp.packet()); err != nil {
						t.Fatal(err)
					}
				}
			}
			v4, v6 := net.ParseIP("198.51.100.2").To4(), net.ParseIP("2001:db8:1::2")
			out := []testnet.Datagrams{
				{Dst: v4, Port: 5353, Count: 11, Payload: 40},
				{Dst: v6, Port: 5353, Count: 3, Payload: 70},
				{Dst: v4, Port: 51820, Count: 2, Payload: 3000, Segment: 1000},
			}
			p.MustSendBack(t, out...)
			ms := gatherSettled(t, plugin)

			var wantIn []telegraf.Metric
			sums := map[uint16][2]int64{}
			for _, tp := range in {
				s := sums[tp.port]
				s[0] += int64(tp.count)
				s[1] += int64(tp.count * tp.size)
				sums[tp.port] = s
			}
			for port, s := range sums {
				wantIn = append(wantIn, metric.New(measurementPorts,
					map[string]string{"interface": tun.Name, "direction": "ingress", "port": strconv.Itoa(int(port)), "port_role": roleDestination},
					map[string]any{"packets": s[0], "bytes": s[1]}, time.Unix(0, 0), telegraf.Counter))
			}
			ports, summaries := byDirection(ms, "ingress")
			testutil.RequireMetricsEqual(t, wantIn, ports, testutil.IgnoreTime(), testutil.SortMetrics())
			if h, _ := summaries[0].GetTag("hook"); h != tc.want {
				t.Errorf("ingress hook %q, want %q", h, tc.want)
			}
			if f := summaries[0].Fields(); f["udp_packets"] != int64(32) || f["malformed_packets"] != int64(0) {
				t.Errorf("ingress summary %v, want 32 UDP packets, none malformed", f)
			}

			// Egress: IP packets of 20/40 + 8 + payload bytes.
			ports, summaries = byDirection(ms, "egress")
			wantOut := traffic(out).portMetricsDir(tun.Name, "egress", roleDestination, nil)
			for _, m := range wantOut {
				b, _ := m.GetField("bytes")
				n, _ := m.GetField("packets")
				m.AddField("bytes", b.(int64)-14*n.(int64)) // no Ethernet header on a TUN
			}
			testutil.RequireMetricsEqual(t, wantOut, ports, testutil.IgnoreTime(), testutil.SortMetrics())
			if h, _ := summaries[0].GetTag("hook"); h != "tcx" {
				t.Errorf("egress hook %q, want tcx", h)
			}
			requireNoErrors(t, acc)
		})
	}
}

// Links whose frames start neither at an Ethernet nor at an IP header (or
// carry outer headers at TC egress) are refused, naming the interface and
// its type, and never counted.
func TestUnsupportedLinkType(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	testnet.NewTUNType(t, p.Receiver, "xppp0", unix.ARPHRD_PPP)
	plugin := newPlugin(t, nil, "xppp0")
	acc := start(t, plugin)
	if len(errorsOf(acc)) != 1 {
		t.Fatalf("errors %v, want one", errorsOf(acc))
	}
	t.Logf("reported: %s", errorsOf(acc)[0])
	for _, want := range []string{"xppp0", `link type "ppp"`, "not supported"} {
		if !strings.Contains(errorsOf(acc)[0].Error(), want) {
			t.Errorf("error %q does not mention %s", errorsOf(acc)[0], want)
		}
	}
	testnet.RequireNoneOurs(t, p.Receiver, "xppp0")
	if ms := gatherOnce(t, plugin); len(ms) != 0 {
		t.Errorf("metrics of a refused interface: %v", ms)
	}
}
