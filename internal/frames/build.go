package frames

import (
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Ports the catalogue uses.
const (
	PortDNS   = 53
	PortNTP   = 123
	PortVXLAN = 4789
	// PortDecoy is what a non-first fragment's payload claims as its
	// destination port: it must never be counted.
	PortDecoy = 7777
	// PortEphemeral is the source port of most frames.
	PortEphemeral = 40000
)

// IPv4UDP is an IPv4/UDP frame of exactly size bytes (at least 60, the
// Ethernet minimum gopacket pads to).
func IPv4UDP(size int, src, dst uint16) []byte {
	mustFit("IPv4UDP", size, 60)
	return Serialize(Ethernet(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolUDP), UDP(src, dst),
		Payload(size-EthernetLen-IPv4Len-UDPLen))
}

// IPv6UDP is an IPv6/UDP frame of exactly size bytes (at least 62).
func IPv6UDP(size int, src, dst uint16) []byte {
	mustFit("IPv6UDP", size, EthernetLen+IPv6Len+UDPLen)
	return Serialize(Ethernet(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolUDP), UDP(src, dst),
		Payload(size-EthernetLen-IPv6Len-UDPLen))
}

func mustFit(what string, size, min int) {
	if size < min {
		panic(fmt.Sprintf("frames: %s needs at least %d bytes, not %d", what, min, size))
	}
}

// IPv4OptionsUDP is IPv4/UDP with a Router Alert option (IHL 6).
func IPv4OptionsUDP(src, dst uint16, payload int) []byte {
	ip := IPv4(layers.IPProtocolUDP)
	ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	return Serialize(Ethernet(layers.EthernetTypeIPv4), ip, UDP(src, dst), Payload(payload))
}

// VLANUDP is IPv4/UDP behind VLAN tags with the given TPIDs (outermost
// first: 802.1ad 0x88A8 or 802.1Q 0x8100), VLAN IDs 100, 101, …
func VLANUDP(tpids []layers.EthernetType, src, dst uint16, payload int) []byte {
	ls := []gopacket.SerializableLayer{Ethernet(tpids[0])}
	for i := range tpids {
		next := layers.EthernetTypeIPv4
		if i+1 < len(tpids) {
			next = tpids[i+1]
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(100 + i), Type: next})
	}
	ls = append(ls, IPv4(layers.IPProtocolUDP), UDP(src, dst), Payload(payload))
	return Serialize(ls...)
}

// IPv4Fragment is a fragment of a UDP datagram: the first (offset 0, MF
// set, carrying the UDP header) or a non-first one (offset 1480, MF clear)
// whose payload looks like a UDP header to PortDecoy.
func IPv4Fragment(first bool, src, dst uint16, payload int) []byte {
	ip := IPv4(layers.IPProtocolUDP)
	ip.Id = 0x1234
	if first {
		ip.Flags = layers.IPv4MoreFragments
		return Serialize(Ethernet(layers.EthernetTypeIPv4), ip, UDP(src, dst), Payload(payload))
	}
	ip.FragOffset = 1480 / 8
	return Serialize(Ethernet(layers.EthernetTypeIPv4), ip, decoyUDP(payload))
}

// decoyUDP is fragment payload that starts like a UDP header to PortDecoy.
func decoyUDP(payload int) gopacket.Payload {
	b := append(Raw(0x9c, 0x40, 0x1e, 0x61, 0, 8, 0, 0), Payload(payload)...) // 40000 -> 7777
	return b
}

// IPv6Fragment is an IPv6 fragment header then either the first fragment
// (offset 0, M set, the UDP header) or a non-first one (offset 1448, M
// clear) whose payload looks like a UDP header to PortDecoy. next is the
// fragment header's next header.
func IPv6Fragment(first bool, next layers.IPProtocol, src, dst uint16, payload int) []byte {
	hdr := Raw(byte(next), 0, 0, 0, 0, 0, 0x56, 0x78)
	if first {
		put16(hdr, 2, 0x0001) // offset 0, M
		return Serialize(Ethernet(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolIPv6Fragment), hdr,
			UDP(src, dst), Payload(payload))
	}
	put16(hdr, 2, 1448) // offset 181 (x 8), M clear: 181<<3 == 1448
	return Serialize(Ethernet(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolIPv6Fragment), hdr, decoyUDP(payload))
}

// IPv6HopDestUDP is IPv6, a hop-by-hop and a destination options header
// (8 bytes each, PadN), then UDP.
func IPv6HopDestUDP(src, dst uint16, payload int) []byte {
	padN := func() *layers.IPv6HopByHopOption {
		return &layers.IPv6HopByHopOption{OptionType: 1, OptionData: make([]byte, 4)}
	}
	hop := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{padN()}}
	hop.NextHeader = layers.IPProtocolIPv6Destination
	dest := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{(*layers.IPv6DestinationOption)(padN())}}
	dest.NextHeader = layers.IPProtocolUDP
	return Serialize(Ethernet(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolIPv6HopByHop), hop, dest,
		UDP(src, dst), Payload(payload))
}

// ExtHeader is a raw IPv6 extension header: next header, its length
// field, then zero bytes (Pad1 options) up to the length the field gives
// for its type (AH: (len+2)*4, fragment: 8, others: (len+1)*8). A routing
// header is type 0 with no segments left (with an even length field, the
// shape gopacket's decoder accepts).
func ExtHeader(typ, next layers.IPProtocol, lenField uint8) []byte {
	n := (int(lenField) + 1) * 8
	switch typ {
	case layers.IPProtocolAH:
		n = (int(lenField) + 2) * 4
	case layers.IPProtocolIPv6Fragment:
		n = 8
	}
	h := make([]byte, n)
	h[0], h[1] = byte(next), lenField
	return h
}

// IPv6ChainUDP is IPv6 with extension headers of the given types (each of
// minimum size except lens, which sets the length field of header i when
// present) ending in UDP.
func IPv6ChainUDP(types []layers.IPProtocol, lens []uint8, src, dst uint16, payload int) []byte {
	first := layers.IPProtocolUDP
	if len(types) > 0 {
		first = types[0]
	}
	ls := []gopacket.SerializableLayer{Ethernet(layers.EthernetTypeIPv6), IPv6(first)}
	for i, t := range types {
		next := layers.IPProtocolUDP
		if i+1 < len(types) {
			next = types[i+1]
		}
		var l uint8
		if i < len(lens) {
			l = lens[i]
		} else if t == layers.IPProtocolAH {
			l = 1 // smallest valid AH: 12 bytes
		}
		ls = append(ls, Raw(ExtHeader(t, next, l)...))
	}
	ls = append(ls, UDP(src, dst), Payload(payload))
	return Serialize(ls...)
}

// Repeat is n copies of t.
func Repeat(t layers.IPProtocol, n int) []layers.IPProtocol {
	ts := make([]layers.IPProtocol, n)
	for i := range ts {
		ts[i] = t
	}
	return ts
}

// TCP is an IPv4/TCP SYN padded to size bytes.
func TCP(size int) []byte {
	tcp := &layers.TCP{SrcPort: PortEphemeral, DstPort: 80, SYN: true, Window: 65535, Seq: 1}
	return Pad(Serialize(Ethernet(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolTCP), tcp), size)
}

// ARP is an ARP request padded to the 60-byte Ethernet minimum.
func ARP() []byte {
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: SrcMAC, SourceProtAddress: SrcV4,
		DstHwAddress: make([]byte, 6), DstProtAddress: DstV4,
	}
	eth := Ethernet(layers.EthernetTypeARP)
	eth.DstMAC = layers.EthernetBroadcast
	return Pad(Serialize(eth, arp), 60)
}

// ESPv6 is IPv6 carrying ESP (next header 50): SPI, sequence, ciphertext.
func ESPv6(payload int) []byte {
	return Serialize(Ethernet(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolESP),
		Raw(0, 0, 0x10, 0, 0, 0, 0, 1), Payload(payload))
}

// ESPv4 is IPv4 carrying ESP (protocol 50).
func ESPv4(payload int) []byte {
	return Serialize(Ethernet(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolESP),
		Raw(0, 0, 0x10, 0, 0, 0, 0, 1), Payload(payload))
}

// EtherType is an Ethernet header of type t followed by payload bytes.
func EtherType(t layers.EthernetType, payload int) []byte {
	return Serialize(Ethernet(t), Payload(payload))
}

// WithVersionIHL returns a copy of an IPv4 frame (no VLAN tag) with its
// version/IHL byte replaced.
func WithVersionIHL(frame []byte, version, ihl uint8) []byte {
	f := append([]byte(nil), frame...)
	f[EthernetLen] = version<<4 | ihl&0xf
	return f
}
