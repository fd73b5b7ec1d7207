//go:build linux

package testnet

import (
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// burst is how many datagrams are sent before a short pause, so that the
// receiving veth's queue (256 frames in native XDP mode) never overflows
// and every datagram reaches the program.
const burst = 32

// Datagrams describes UDP traffic from the sender to the receiver.
type Datagrams struct {
	Dst     net.IP // receiver address; its family picks IPv4 or IPv6
	Port    int    // destination port
	SrcPort int    // source port; 0 lets the kernel pick one (fixed for all)
	Count   int
	Payload int // payload bytes per datagram (per send with Segment)
	// Segment, if set, sends each Payload with UDP_SEGMENT (GSO): one
	// packet through the stack that leaves as ceil(Payload/Segment)
	// datagrams of Segment bytes (the last one shorter).
	Segment int
}

// Segments is how many datagrams d puts on the wire.
func (d Datagrams) Segments() int {
	if d.Segment == 0 {
		return d.Count
	}
	return d.Count * ((d.Payload + d.Segment - 1) / d.Segment)
}

// WireBytes is the Ethernet bytes of all datagrams of d.
func (d Datagrams) WireBytes() int {
	if d.Segment == 0 {
		return d.Count * FrameLen(d.Dst, d.Payload)
	}
	full, rest := d.Payload/d.Segment, d.Payload%d.Segment
	per := full * FrameLen(d.Dst, d.Segment)
	if rest > 0 {
		per += FrameLen(d.Dst, rest)
	}
	return d.Count * per
}

// Send sends the datagrams from the sender namespace. Each arrives at the
// receiver as one frame of FrameLen(d.Dst, d.Payload) bytes.
func (p *Pair) Send(d Datagrams) error {
	return p.InSender(func() error { return sendUDP(d) })
}

// SendBack sends the datagrams the other way: from the receiver namespace
// (where the plugin counts them as egress) to d.Dst in the sender's.
func (p *Pair) SendBack(d Datagrams) error {
	return p.InReceiver(func() error { return sendUDP(d) })
}

// MustSendBack is SendBack that fails the test on error.
func (p *Pair) MustSendBack(t testing.TB, ds ...Datagrams) {
	t.Helper()
	for _, d := range ds {
		if err := p.SendBack(d); err != nil {
			t.Fatal(err)
		}
	}
}

// MustSend is Send that fails the test on error.
func (p *Pair) MustSend(t testing.TB, ds ...Datagrams) {
	t.Helper()
	for _, d := range ds {
		if err := p.Send(d); err != nil {
			t.Fatal(err)
		}
	}
}

// FrameLen is the size of the Ethernet frame carrying a UDP datagram with
// payload bytes to dst (minimum Ethernet frame size is not padded on veth).
func FrameLen(dst net.IP, payload int) int {
	if dst.To4() != nil {
		return 14 + 20 + 8 + payload
	}
	return 14 + 40 + 8 + payload
}

func sendUDP(d Datagrams) error {
	network := "udp6"
	if d.Dst.To4() != nil {
		network = "udp4"
	}
	// Unconnected, so the receiver's ICMP port unreachable never surfaces
	// as an error on a later write.
	conn, err := net.ListenUDP(network, &net.UDPAddr{Port: d.SrcPort})
	if err != nil {
		return fmt.Errorf("udp socket (source port %d): %w", d.SrcPort, err)
	}
	defer conn.Close()
	if d.Segment > 0 {
		if err := setSegment(conn, d.Segment); err != nil {
			return err
		}
	}
	dst := &net.UDPAddr{IP: d.Dst, Port: d.Port}
	buf := make([]byte, d.Payload)
	for i := 0; i < d.Count; i++ {
		if _, err := conn.WriteToUDP(buf, dst); err != nil {
			return fmt.Errorf("send to %s: %w", dst, err)
		}
		if (i+1)%burst == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
	return nil
}

// setSegment sets UDP_SEGMENT: every write is sent as one GSO packet of
// size-byte datagrams.
func setSegment(conn *net.UDPConn, size int) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, size)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt UDP_SEGMENT %d: %w", size, serr)
	}
	return nil
}

// SendFrames sends raw Ethernet frames out of the sender's veth end with
// an AF_PACKET socket: malformed and unusual frames reach the receiver
// exactly as given (the veth does not pad or check them).
func (p *Pair) SendFrames(frames ...[]byte) error {
	return p.InSender(func() error {
		idx, err := LinkIndex(p.Sender, p.SenderIf)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		defer unix.Close(fd)
		addr := &unix.SockaddrLinklayer{Ifindex: idx, Halen: 6}
		copy(addr.Addr[:], p.ReceiverMAC)
		for i, f := range frames {
			if err := unix.Sendto(fd, f, 0, addr); err != nil {
				return fmt.Errorf("sending frame %d (%d bytes): %w", i, len(f), err)
			}
			if (i+1)%burst == 0 {
				time.Sleep(200 * time.Microsecond)
			}
		}
		return nil
	})
}
