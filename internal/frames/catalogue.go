package frames

import (
	"github.com/google/gopacket/layers"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// Case is a named frame and what the README's classification rules make
// of it. Bytes counted are always len(Frame).
type Case struct {
	Name  string
	Rule  string // the rule that decides, for messages
	Frame []byte
	Class bpf.Class
	// Dst and Src are the ports a ClassUDP frame is counted to.
	Dst, Src uint16
	// Multi marks frames larger than the first buffer BPF_PROG_TEST_RUN
	// gives an XDP program (about 3.5 KB with 4 KiB pages): only the
	// xdp.frags variant sees them whole.
	Multi bool
}

// Catalogue returns one case per frame class the tests, benchmarks and the
// fuzzer's seed corpus share. Every call builds fresh frames.
func Catalogue() []Case {
	const pl = 32 // default payload
	v4 := IPv4UDP(64, PortEphemeral, PortDNS)
	v6 := IPv6UDP(EthernetLen+IPv6Len+UDPLen+pl, PortEphemeral, PortDNS)
	udp := func(name, rule string, f []byte, src, dst uint16) Case {
		return Case{Name: name, Rule: rule, Frame: f, Class: bpf.ClassUDP, Src: src, Dst: dst}
	}
	is := func(name, rule string, f []byte, c bpf.Class) Case {
		return Case{Name: name, Rule: rule, Frame: f, Class: c}
	}
	tooManyVLAN := make([]layers.EthernetType, bpf.MaxVLANTags+1)
	for i := range tooManyVLAN {
		tooManyVLAN[i] = layers.EthernetTypeDot1Q
	}
	dest := layers.IPProtocolIPv6Destination
	cases := []Case{
		udp("ipv4-udp-64", "5,7: UDP at IHL*4", v4, PortEphemeral, PortDNS),
		udp("ipv4-udp-1500", "5,7", IPv4UDP(1500, PortEphemeral, PortNTP), PortEphemeral, PortNTP),
		udp("ipv4-udp-ports-0-65535", "7", IPv4UDP(64, 0, 65535), 0, 65535),
		udp("ipv4-udp-padded", "1: length fields ignored, padding counts",
			Pad(Serialize(Ethernet(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolUDP), UDP(PortEphemeral, PortDNS)), 60),
			PortEphemeral, PortDNS),
		udp("ipv4-options", "5: UDP at IHL*4 = 24", IPv4OptionsUDP(PortEphemeral, PortDNS, pl), PortEphemeral, PortDNS),
		udp("ipv6-udp", "6,7", v6, PortEphemeral, PortDNS),
		udp("ipv6-hop-dest-udp", "6: hop-by-hop, destination options walked",
			IPv6HopDestUDP(PortEphemeral, PortVXLAN, pl), PortEphemeral, PortVXLAN),
		udp("ipv6-routing-ah-udp", "6: routing (hdr_len+1)*8, AH (len+2)*4",
			IPv6ChainUDP([]layers.IPProtocol{layers.IPProtocolIPv6Routing, layers.IPProtocolAH}, []uint8{2, 4},
				PortEphemeral, PortDNS, pl), PortEphemeral, PortDNS),
		udp("ipv6-frag-first", "6: fragment offset 0 -> go on", IPv6Fragment(true, layers.IPProtocolUDP, PortEphemeral, PortNTP, pl),
			PortEphemeral, PortNTP),
		is("ipv6-frag-nonfirst", "6: fragment offset > 0, next UDP -> fragment",
			IPv6Fragment(false, layers.IPProtocolUDP, 0, 0, pl), bpf.ClassFragment),
		is("ipv6-frag-nonfirst-tcp", "6: fragment offset > 0, next not UDP -> other",
			IPv6Fragment(false, layers.IPProtocolTCP, 0, 0, pl), bpf.ClassOther),
		udp("vlan-8021q", "3: one tag", VLANUDP([]layers.EthernetType{layers.EthernetTypeDot1Q}, PortEphemeral, PortDNS, pl),
			PortEphemeral, PortDNS),
		udp("vlan-qinq", "3: V tags, 802.1ad then 802.1Q",
			VLANUDP([]layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q}, PortEphemeral, PortDNS, pl),
			PortEphemeral, PortDNS),
		is("vlan-too-many", "3: still a VLAN tag after V tags -> other", VLANUDP(tooManyVLAN, PortEphemeral, PortDNS, pl), bpf.ClassOther),
		is("vlan-cut-short", "3: tag cut short -> malformed",
			Truncate(VLANUDP([]layers.EthernetType{layers.EthernetTypeDot1Q}, PortEphemeral, PortDNS, pl), EthernetLen+2), bpf.ClassMalformed),
		udp("ipv4-frag-first", "5: offset 0, MF -> counted to its port", IPv4Fragment(true, PortEphemeral, PortDNS, pl),
			PortEphemeral, PortDNS),
		is("ipv4-frag-nonfirst", "5: offset > 0 -> fragment (7777 stays zero)", IPv4Fragment(false, 0, 0, pl), bpf.ClassFragment),
		is("tcp-64", "5: protocol not UDP -> other", TCP(64), bpf.ClassOther),
		is("arp", "4: EtherType not IP -> other", ARP(), bpf.ClassOther),
		is("lldp", "4", EtherType(layers.EthernetTypeLinkLayerDiscovery, 46), bpf.ClassOther),
		is("ipv4-truncated", "5: fewer than 20 bytes -> malformed", Truncate(v4, EthernetLen+10), bpf.ClassMalformed),
		is("ipv4-ethernet-only", "5: 0 bytes of IPv4 -> malformed", Truncate(v4, EthernetLen), bpf.ClassMalformed),
		is("ipv4-ihl-4", "5: IHL < 5 -> malformed", WithVersionIHL(v4, 4, 4), bpf.ClassMalformed),
		is("ipv4-version-6", "5: version != 4 -> malformed", WithVersionIHL(v4, 6, 5), bpf.ClassMalformed),
		is("ipv4-ihl-past-end", "5: IHL*4 past the frame end -> malformed",
			Truncate(IPv4OptionsUDP(PortEphemeral, PortDNS, 0), EthernetLen+IPv4Len+2), bpf.ClassMalformed),
		is("udp-truncated", "7: fewer than 8 bytes of UDP -> malformed", Truncate(v4, EthernetLen+IPv4Len+4), bpf.ClassMalformed),
		is("ipv6-truncated", "6: fewer than 40 bytes -> malformed", Truncate(v6, EthernetLen+30), bpf.ClassMalformed),
		is("ipv6-udp-truncated", "7", Truncate(v6, EthernetLen+IPv6Len+7), bpf.ClassMalformed),
		is("ipv6-ext-cut-short", "6: extension header's fixed part not in frame -> malformed",
			Truncate(IPv6ChainUDP([]layers.IPProtocol{dest}, nil, PortEphemeral, PortDNS, pl), EthernetLen+IPv6Len+1), bpf.ClassMalformed),
		udp("ipv6-ext-n", "6: N extension headers walked",
			IPv6ChainUDP(Repeat(dest, bpf.MaxIPv6ExtHeaders), nil, PortEphemeral, PortDNS, pl), PortEphemeral, PortDNS),
		is("ipv6-ext-n-plus-1", "6: extension header left after N -> other",
			IPv6ChainUDP(Repeat(dest, bpf.MaxIPv6ExtHeaders+1), nil, PortEphemeral, PortDNS, pl), bpf.ClassOther),
		is("ipv6-esp", "6: ESP -> other", ESPv6(pl), bpf.ClassOther),
		is("ipv4-esp", "5: protocol not UDP -> other", ESPv4(pl), bpf.ClassOther),
		is("ipv6-no-next-header", "6: 59 -> other",
			Serialize(Ethernet(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolNoNextHeader), Payload(pl)), bpf.ClassOther),
		{Name: "ipv4-udp-jumbo-9000", Rule: "1: every buffer counts in bytes", Frame: IPv4UDP(9000, PortEphemeral, PortVXLAN),
			Class: bpf.ClassUDP, Src: PortEphemeral, Dst: PortVXLAN, Multi: true},
		{Name: "ipv6-headers-past-first-buffer", Rule: "8: UDP header past the first buffer -> malformed",
			Frame: IPv6ChainUDP([]layers.IPProtocol{dest, dest}, []uint8{255, 255}, PortEphemeral, PortDNS, 64),
			Class: bpf.ClassMalformed, Multi: true},
	}
	return cases
}

// Lookup returns the catalogue case called name.
func Lookup(name string) (Case, bool) {
	for _, c := range Catalogue() {
		if c.Name == name {
			return c, true
		}
	}
	return Case{}, false
}
