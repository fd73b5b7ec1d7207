package bpf_test

import (
	"testing"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// attachIn loads cfg and attaches it at tg to the receiver's veth end
// (tg.Ifindex is filled in).
func attachIn(t *testing.T, p *testnet.Pair, cfg bpf.Config, tg bpf.Target) (*bpf.Counters, *bpf.Attachment) {
	t.Helper()
	return attachAt(t, p.Receiver, p.ReceiverIf, cfg, tg)
}

// attachAt loads cfg and attaches it at tg to dev in namespace ns.
func attachAt(t *testing.T, ns, dev string, cfg bpf.Config, tg bpf.Target) (*bpf.Counters, *bpf.Attachment) {
	t.Helper()
	l, err := bpf.NewLoader()
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var a *bpf.Attachment
	err = testnet.Do(ns, func() (err error) {
		if tg.Ifindex, err = testnet.LinkIndex(ns, dev); err != nil {
			return err
		}
		a, err = c.Attach(tg)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return c, a
}

// nativeXDP is the ingress XDP hook in native mode.
var nativeXDP = bpf.Target{XDP: true, Mode: bpf.ModeNative}

// settled returns c's snapshot once its frame count stops changing.
func settled(c *bpf.Counters) bpf.Snapshot {
	var s bpf.Snapshot
	testnet.WaitStable(func() uint64 { c.Snapshot(&s); return s.Summary.Packets })
	return s
}

func TestLiveNative(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	c, a := attachIn(t, p, bpf.Config{CountSource: true}, nativeXDP)
	if a.Hook != bpf.HookXDPNative || a.Variant != bpf.Plain {
		t.Fatalf("attached %v %v, want native xdp", a.Hook, a.Variant)
	}
	sent := []testnet.Datagrams{
		{Dst: p.ReceiverV4, Port: 53, SrcPort: 40053, Count: 7, Payload: 10},
		{Dst: p.ReceiverV4, Port: 123, SrcPort: 40123, Count: 300, Payload: 48},
		{Dst: p.ReceiverV6, Port: 53, SrcPort: 40054, Count: 11, Payload: 100},
		{Dst: p.ReceiverV6, Port: 5060, SrcPort: 40060, Count: 5, Payload: 1000},
	}
	p.MustSend(t, sent...)
	s := settled(c)

	want := map[uint16]bpf.Counter{}
	wantSrc := map[uint16]bpf.Counter{}
	var udp bpf.Counter
	for _, d := range sent {
		n := uint64(d.Count)
		b := n * uint64(testnet.FrameLen(d.Dst, d.Payload))
		w := want[uint16(d.Port)]
		w.Packets, w.Bytes = w.Packets+n, w.Bytes+b
		want[uint16(d.Port)] = w
		wantSrc[uint16(d.SrcPort)] = bpf.Counter{Packets: n, Bytes: b}
		udp.Packets, udp.Bytes = udp.Packets+n, udp.Bytes+b
	}
	checkPorts(t, "destination", s.Destination, want)
	checkPorts(t, "source", s.Source, wantSrc)
	sum := s.Summary
	if sum.UDPPackets != udp.Packets || sum.UDPBytes != udp.Bytes || sum.UDPFragments != 0 || sum.MalformedPackets != 0 {
		t.Errorf("summary %+v, want udp %+v and no fragments or malformed", sum, udp)
	}
	if sum.Packets != sum.UDPPackets+sum.UDPFragments+sum.OtherPackets+sum.MalformedPackets {
		t.Errorf("summary %+v breaks packets = udp + fragments + other + malformed", sum)
	}
	if sum.Bytes < sum.UDPBytes {
		t.Errorf("bytes %d < udp_bytes %d", sum.Bytes, sum.UDPBytes)
	}

	a.Close()
	testnet.RequireNoXDP(t, p.Receiver, p.ReceiverIf)
}

func TestLiveJumboNative(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{MTU: 9000})
	c, a := attachIn(t, p, bpf.Config{}, nativeXDP)
	if a.Hook != bpf.HookXDPNative || a.Variant != bpf.Frags {
		t.Fatalf("attached %v %v, want native xdp.frags (plain is refused with ERANGE at MTU 9000)", a.Hook, a.Variant)
	}
	const payload = 9000 - 20 - 8 // one 9000-byte IPv4 packet, not fragmented
	p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 9999, Count: 1, Payload: payload})
	s := settled(c)
	want := map[uint16]bpf.Counter{9999: {Packets: 1, Bytes: 14 + 9000}}
	checkPorts(t, "destination", s.Destination, want)
	if s.Summary.UDPFragments != 0 || s.Summary.MalformedPackets != 0 {
		t.Errorf("summary %+v: want no fragments or malformed", s.Summary)
	}
}

func checkPorts(t *testing.T, role string, got []bpf.PortCount, want map[uint16]bpf.Counter) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s ports: got %+v, want %+v", role, got, want)
		return
	}
	for _, pc := range got {
		if w, ok := want[pc.Port]; !ok || w != pc.Counter {
			t.Errorf("%s port %d: got %+v, want %+v", role, pc.Port, pc.Counter, w)
		}
	}
}
