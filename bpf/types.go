// Package bpf holds the XDP program that counts UDP packets and bytes per
// port (xdp_udp_ports.c), its generated bindings and a small typed API to
// load it, attach it to an interface and read its counters.
package bpf

import "fmt"

// Parser limits, documented in the README's classification rules. They
// equal the C enum xdp_udp_ports_limits (TestConstantsMatchC).
const (
	// MaxVLANTags is how many 802.1Q/802.1ad tags are parsed; a frame with
	// more is counted as other.
	MaxVLANTags = 2
	// MaxIPv6ExtHeaders is how many IPv6 extension headers are walked; an
	// extension header left after them makes the frame other.
	MaxIPv6ExtHeaders = 6
	// DensePortSlots is the number of port slots without an allow-list.
	DensePortSlots = 65536
)

// Class is the class the program puts a frame in.
type Class int

// Frame classes. The values equal the C enum xdp_udp_ports_class.
const (
	ClassFragment  Class = 0
	ClassOther     Class = 1
	ClassMalformed Class = 2
	ClassUDP       Class = 3
)

func (c Class) String() string {
	switch c {
	case ClassFragment:
		return "fragment"
	case ClassOther:
		return "other"
	case ClassMalformed:
		return "malformed"
	case ClassUDP:
		return "udp"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// slotPorts is the first destination port slot in a CPU's block; slots
// below it are the class slots (equals C SLOT_PORTS).
const slotPorts = 4

// Mode is an XDP attach mode.
type Mode int

// Attach modes. ModeAuto tries native, then generic.
const (
	ModeAuto Mode = iota
	ModeNative
	ModeGeneric
	ModeOffload
)

var modeNames = [...]string{ModeAuto: "auto", ModeNative: "native", ModeGeneric: "generic", ModeOffload: "offload"}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses the xdp_mode option.
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if s == name {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("unknown XDP mode %q (want auto, native, generic or offload)", s)
}

// Variant is one of the programs built from the same source.
type Variant int

// Program variants.
const (
	// Plain is the SEC("xdp") program: frame length is data_end - data.
	Plain Variant = iota
	// Frags is the SEC("xdp.frags") program: multi-buffer aware, length
	// from bpf_xdp_get_buff_len. Needed where the MTU exceeds a page.
	Frags
	// TC is the SEC("tc") program for tcx and legacy clsact filters, both
	// directions: length from skb->len, segments of GSO/GRO packets
	// counted one by one.
	TC
	numVariants
)

var variantNames = [...]string{Plain: "xdp", Frags: "xdp.frags", TC: "tc"}

func (v Variant) String() string {
	if v >= 0 && v < numVariants {
		return variantNames[v]
	}
	return fmt.Sprintf("Variant(%d)", int(v))
}

// Direction is which way the packets a program sees travel.
type Direction int

// Directions.
const (
	Ingress Direction = iota
	Egress
)

func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// Hook is where a program really runs, as the hook tag names it.
type Hook int

// Hooks. HookNone is no hook (nothing attached).
const (
	HookNone Hook = iota
	HookXDPNative
	HookXDPGeneric
	HookXDPOffload
	HookTCX // a tcx bpf_link (Linux 6.6+)
	HookTC  // a legacy clsact direct-action filter
)

var hookNames = [...]string{HookNone: "none", HookXDPNative: "xdp_native", HookXDPGeneric: "xdp_generic",
	HookXDPOffload: "xdp_offload", HookTCX: "tcx", HookTC: "tc"}

func (h Hook) String() string {
	if h >= 0 && int(h) < len(hookNames) {
		return hookNames[h]
	}
	return fmt.Sprintf("Hook(%d)", int(h))
}

// IsXDP reports whether h is one of the XDP hooks.
func (h Hook) IsXDP() bool { return h == HookXDPNative || h == HookXDPGeneric || h == HookXDPOffload }

// xdpHooks maps an XDP attach mode to its hook.
var xdpHooks = map[Mode]Hook{ModeNative: HookXDPNative, ModeGeneric: HookXDPGeneric, ModeOffload: HookXDPOffload}

// Hook is the XDP hook of attach mode m; ModeAuto tries native first.
func (m Mode) Hook() Hook {
	if m == ModeAuto {
		return HookXDPNative
	}
	return xdpHooks[m]
}

// Frame is where frames start on a link, a load-time constant of the
// program (one instance per interface). The values equal the C enum
// xdp_udp_ports_frame.
type Frame int

// Frame starts.
const (
	// FrameEthernet: an Ethernet header (Ethernet links, loopback).
	FrameEthernet Frame = 0
	// FrameIP: the IP header; the version is the first nibble
	// (ARPHRD_NONE links: TUN, WireGuard).
	FrameIP Frame = 1
)

func (f Frame) String() string {
	if f == FrameIP {
		return "ip"
	}
	return "ethernet"
}

// Counter is a packet and byte count.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

func (c *Counter) add(o Counter) {
	c.Packets += o.Packets
	c.Bytes += o.Bytes
}

// PortCount is the counter of one port.
type PortCount struct {
	Port uint16
	Counter
}

// Summary holds one interface's totals. Packets = UDPPackets +
// UDPFragments + OtherPackets + MalformedPackets.
type Summary struct {
	Packets          uint64
	Bytes            uint64
	UDPPackets       uint64
	UDPBytes         uint64
	UDPFragments     uint64
	OtherPackets     uint64
	MalformedPackets uint64
}

// Snapshot is every counter of one loaded program, summed over CPUs.
type Snapshot struct {
	// Destination and Source hold the ports with packets > 0, ascending.
	// Source is empty unless source ports are counted.
	Destination []PortCount
	Source      []PortCount
	// DestinationOther and SourceOther sum the ports not in the allow-list
	// (zero without one).
	DestinationOther Counter
	SourceOther      Counter
	Summary          Summary

	sums []Counter // one role's sums over CPUs, reused
}
