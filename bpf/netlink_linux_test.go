package bpf_test

import (
	"errors"
	"os"
	"testing"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// Kernels without XDP bpf_link (< 5.9) attach through netlink; forced
// here. Such an attachment never replaces another program, and Close
// detaches only our own.
func TestNetlinkAttachFallback(t *testing.T) {
	t.Setenv("XDP_UDP_PORTS_NETLINK_ATTACH", "1")
	p := testnet.NewPair(t, testnet.Options{})
	c, a := attachIn(t, p, bpf.Config{}, nativeXDP)
	id, err := testnet.XDPProgID(p.Receiver, p.ReceiverIf)
	if err != nil || id == 0 || uint32(a.ProgramID()) != id {
		t.Fatalf("attached program %d (%v), attachment says %d", id, err, uint32(a.ProgramID()))
	}
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: 3, Payload: 1})
	s := settled(c)
	checkPorts(t, "destination", s.Destination, map[uint16]bpf.Counter{53: {Packets: 3, Bytes: 3 * uint64(testnet.FrameLen(p.ReceiverV4, 1))}})

	// A second instance must not replace the first: it finds the first's
	// ownership lock held.
	other, err := bpf.NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := other.Load(bpf.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	err = p.InReceiver(func() error {
		_, err := c2.Attach(bpf.Target{Ifindex: p.ReceiverIndex, XDP: true, Mode: bpf.ModeNative})
		return err
	})
	var oe *bpf.OwnerError
	if !errors.As(err, &oe) || oe.PID != os.Getpid() {
		t.Errorf("attaching over a live instance's program: %v, want an OwnerError naming pid %d", err, os.Getpid())
	}
	if now, _ := testnet.XDPProgID(p.Receiver, p.ReceiverIf); now != id {
		t.Errorf("program %d replaced by %d", id, now)
	}
	if err := p.InReceiver(a.Close); err != nil {
		t.Fatal(err)
	}
	testnet.RequireNoXDP(t, p.Receiver, p.ReceiverIf)
}
