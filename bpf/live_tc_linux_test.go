package bpf_test

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// pageSize: AF_PACKET sends a frame of a page or more as a 14-byte linear
// part (the Ethernet header) and the rest in fragments.
const pageSize = 4096

// tcPullBytes equals C TC_PULL_BYTES: at TC, headers past the linear
// part are pulled in up to this many bytes.
const tcPullBytes = 512

// TestLiveTCCatalogue sends every catalogue frame, the large ones too,
// through a veth into TC ingress (tcx) and checks that each lands in the
// class the rules give it with the bytes XDP would count: frames of a page
// or more arrive with only their Ethernet header in the linear part, so
// the program pulls the headers in (up to 512 bytes); a VLAN tag arrives
// in metadata (the kernel untags before TC ingress); frames the kernel
// drops before TC (a VLAN tag cut short) are not seen.
func TestLiveTCCatalogue(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{MTU: 9000})
	c, a := attachIn(t, p, bpf.Config{CountSource: true}, bpf.Target{Dir: bpf.Ingress})
	if a.Hook != bpf.HookTCX || a.Variant != bpf.TC {
		t.Fatalf("attached %v %v, want tcx", a.Hook, a.Variant)
	}
	want := newTally()
	var sent [][]byte
	for _, fc := range frames.Catalogue() {
		f := live(fc.Frame, p)
		if fc.Name == "vlan-cut-short" {
			continue // dropped by the kernel's VLAN untagging, before any TC program
		}
		first := len(f)
		if len(f) >= pageSize-64 {
			first = tcPullBytes
		}
		want.add(reference(f, first), c.Layout())
		sent = append(sent, f)
	}
	if err := p.SendFrames(sent...); err != nil {
		t.Fatal(err)
	}
	got := settledTally(c)
	// IPv6 neighbour and MLD traffic of the veth may add to other.
	extra := got.Summary.OtherPackets - want.Summary.OtherPackets
	want.Summary.OtherPackets += extra
	want.Summary.Packets += extra
	got.Summary.Bytes, want.Summary.Bytes = 0, 0
	for _, d := range got.diff(want) {
		t.Error(d)
	}
}

// live readdresses a catalogue frame to the pair's MACs, so the receiving
// veth takes it as its own.
func live(frame []byte, p *testnet.Pair) []byte {
	f := append([]byte{}, frame...)
	if len(f) >= 12 {
		copy(f[0:6], p.ReceiverMAC)
		copy(f[6:12], p.SenderMAC)
	}
	return f
}

func settledTally(c *bpf.Counters) tally {
	s := settled(c)
	return tallyOf(&s)
}

// attachSender loads cfg and attaches it at tg to the sender's veth end.
func attachSender(t *testing.T, p *testnet.Pair, cfg bpf.Config, tg bpf.Target) (*bpf.Counters, *bpf.Attachment) {
	t.Helper()
	return attachAt(t, p.Sender, p.SenderIf, cfg, tg)
}

// vlanPushTCX attaches, ahead of prog at egress of the sender's veth, a
// tcx program that pushes n VLAN tags with bpf_skb_vlan_push (the last
// into metadata, the ones before into the packet), as VLAN devices hand
// tags down.
func vlanPushTCX(t *testing.T, p *testnet.Pair, before ebpf.ProgramID, n int) {
	t.Helper()
	be := binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, 0x8100))
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	for i := 0; i < n; i++ {
		insns = append(insns,
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, int32(be)),
			asm.Mov.Imm(asm.R3, int32(100+i)),
			asm.FnSkbVlanPush.Call())
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, -1), asm.Return()) // TCX_NEXT
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "vlan_push", Type: ebpf.SchedCLS, License: "MIT", Instructions: insns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	err = p.InSender(func() error {
		idx, err := testnet.LinkIndex(p.Sender, p.SenderIf)
		if err != nil {
			return err
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: idx, Program: prog, Attach: ebpf.AttachTCXEgress, Anchor: link.BeforeProgramByID(before)})
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLiveTCEgressVLAN: tags handed down in metadata on egress (pushed by
// a program ahead of ours) count as at XDP on the wire: one or two tags
// -> UDP with 4 bytes per tag, three tags -> other.
func TestLiveTCEgressVLAN(t *testing.T) {
	for _, tc := range []struct {
		tags  int
		class bpf.Class
	}{{1, bpf.ClassUDP}, {2, bpf.ClassUDP}, {3, bpf.ClassOther}} {
		p := testnet.NewPair(t, testnet.Options{})
		c, a := attachSender(t, p, bpf.Config{}, bpf.Target{Dir: bpf.Egress})
		vlanPushTCX(t, p, a.ProgramID(), tc.tags)
		const n, payload = 13, 50
		p.MustSend(t, testnet.Datagrams{Dst: p.ReceiverV4, Port: 53, Count: n, Payload: payload})
		s := settled(c)
		bytes := uint64(n * (testnet.FrameLen(p.ReceiverV4, payload) + 4*tc.tags))
		if tc.class == bpf.ClassUDP {
			checkPorts(t, "destination", s.Destination, map[uint16]bpf.Counter{53: {Packets: n, Bytes: bytes}})
		} else if s.Summary.UDPPackets != 0 || s.Summary.OtherPackets < n {
			t.Errorf("%d tags: summary %+v, want %d other and no UDP", tc.tags, s.Summary, n)
		}
	}
}

// TestLiveTCGSO: a UDP_SEGMENT send is one packet through the stack; TC
// counts its segments and their wire bytes, at egress of the sender and
// at ingress of the receiver (veth passes GSO packets on whole).
func TestLiveTCGSO(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	out, _ := attachSender(t, p, bpf.Config{}, bpf.Target{Dir: bpf.Egress})
	in, _ := attachIn(t, p, bpf.Config{}, bpf.Target{Dir: bpf.Ingress})
	ds := []testnet.Datagrams{
		{Dst: p.ReceiverV4, Port: 4789, Count: 5, Payload: 8000, Segment: 1400},
		{Dst: p.ReceiverV6, Port: 4790, Count: 3, Payload: 3000, Segment: 1000},
	}
	p.MustSend(t, ds...)
	want := map[uint16]bpf.Counter{}
	for _, d := range ds {
		want[uint16(d.Port)] = bpf.Counter{Packets: uint64(d.Segments()), Bytes: uint64(d.WireBytes())}
	}
	for name, c := range map[string]*bpf.Counters{"egress": out, "ingress": in} {
		s := settled(c)
		checkPorts(t, name, s.Destination, want)
	}
}
