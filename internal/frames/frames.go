// Package frames builds the test frames every part of the project shares:
// one of each class of the README's classification rules, with the class
// and ports the rules give it (Catalogue), and builders for the common
// shapes at any size (IPv4UDP, IPv6UDP). Frames are built with
// gopacket/layers where it can build them; shapes it cannot (truncated
// headers, a bad IHL, a cut-short VLAN tag) are post-processed bytes.
package frames

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Addresses every frame uses (documentation ranges, locally administered MACs).
var (
	SrcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	DstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	SrcV4  = net.IPv4(192, 0, 2, 1).To4()
	DstV4  = net.IPv4(192, 0, 2, 2).To4()
	SrcV6  = net.ParseIP("2001:db8::1")
	DstV6  = net.ParseIP("2001:db8::2")
)

// Header sizes.
const (
	EthernetLen = 14
	VLANLen     = 4
	IPv4Len     = 20
	IPv6Len     = 40
	UDPLen      = 8
)

// Serialize builds a frame from layers, fixing lengths and checksums. It
// panics on a serialization error: every caller passes fixed layers, so an
// error is a bug in this package.
func Serialize(ls ...gopacket.SerializableLayer) []byte {
	for _, l := range ls {
		if u, ok := l.(*layers.UDP); ok {
			setChecksumLayer(u, ls)
		}
		if t, ok := l.(*layers.TCP); ok {
			setChecksumLayer(t, ls)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		panic(fmt.Sprintf("frames: serializing %v: %v", ls, err))
	}
	return append([]byte(nil), buf.Bytes()...)
}

// setChecksumLayer gives a transport layer the last IP layer before it for
// its pseudo-header checksum.
func setChecksumLayer(tl interface {
	SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
}, ls []gopacket.SerializableLayer) {
	for _, l := range ls {
		if any(l) == any(tl) {
			return
		}
		if nl, ok := l.(gopacket.NetworkLayer); ok {
			if err := tl.SetNetworkLayerForChecksum(nl); err != nil {
				panic(fmt.Sprintf("frames: checksum layer: %v", err))
			}
		}
	}
}

// Ethernet is an Ethernet header of the given EtherType.
func Ethernet(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: SrcMAC, DstMAC: DstMAC, EthernetType: t}
}

// IPv4 is an IPv4 header carrying proto.
func IPv4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: SrcV4, DstIP: DstV4}
}

// IPv6 is an IPv6 header whose next header is next.
func IPv6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: SrcV6, DstIP: DstV6}
}

// UDP is a UDP header.
func UDP(src, dst uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(src), DstPort: layers.UDPPort(dst)}
}

// Payload is n bytes of a recognisable pattern.
func Payload(n int) gopacket.Payload {
	p := make([]byte, max(n, 0))
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// Raw is a layer of literal bytes (a header gopacket cannot serialize).
func Raw(b ...byte) gopacket.Payload { return b }

// Pad appends zero bytes up to size, like Ethernet padding: length
// fields inside the frame do not change.
func Pad(frame []byte, size int) []byte {
	if len(frame) >= size {
		return frame
	}
	return append(frame, make([]byte, size-len(frame))...)
}

// Truncate cuts a copy of frame to n bytes.
func Truncate(frame []byte, n int) []byte {
	return append([]byte(nil), frame[:n]...)
}

// put16 writes v big-endian at off.
func put16(b []byte, off int, v uint16) { binary.BigEndian.PutUint16(b[off:], v) }
