package xdp_udp_ports

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/influxdata/telegraf"

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

func TestPinnedRestartCountsWhileStopped(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	pins := filepath.Join(testnet.MountBPFFS(t), "xdp")
	configure := func(x *XDPUDPPorts) { x.PinPath = pins }
	send := func(n int) { p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: n, Payload: 8}) }

	first := newPlugin(t, configure, p.ReceiverIf)
	start(t, first)
	send(10)
	if got := portPackets(gatherSettled(t, first), "53"); got != 10 {
		t.Fatalf("port 53: %d packets, want 10", got)
	}
	first.Stop()
	id, err := testnet.XDPProgID(p.Receiver, p.ReceiverIf)
	if err != nil || id == 0 {
		t.Fatalf("with pin_path the program must stay attached after Stop (id %d, %v)", id, err)
	}
	for _, dir := range []string{pins, filepath.Join(pins, p.ReceiverIf)} {
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
	if now, _ := testnet.XDPProgID(p.Receiver, p.ReceiverIf); now != id {
		t.Errorf("program id %d after restart, want the adopted %d", now, id)
	}
	if len(acc.Errors) != 0 {
		t.Errorf("errors: %v", acc.Errors)
	}
	second.Stop()

	// Another allow-list does not fit the pinned counters: replaced, counts restart.
	third := newPlugin(t, func(x *XDPUDPPorts) { configure(x); x.Ports = []string{"53"} }, p.ReceiverIf)
	acc = start(t, third)
	send(2)
	if got := portPackets(gatherSettled(t, third), "53"); got != 2 {
		t.Fatalf("port 53 with another configuration: %d packets, want 2 (restarted)", got)
	}
	if len(acc.Errors) != 0 {
		t.Errorf("errors: %v", acc.Errors)
	}
	third.Stop()
	if now, _ := testnet.XDPProgID(p.Receiver, p.ReceiverIf); now == id || now == 0 {
		t.Errorf("program id %d: want a new pinned program, not %d and not none", now, id)
	}
}
