package bpf_test

import (
	"encoding/binary"
	"fmt"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// verdict is what the classification rules make of a frame: its class,
// for ClassUDP its ports, and the bytes it counts.
type verdict struct {
	Class    bpf.Class
	Dst, Src uint16
	Bytes    uint64
}

func (v verdict) String() string {
	if v.Class == bpf.ClassUDP {
		return fmt.Sprintf("udp %d->%d, %d bytes", v.Src, v.Dst, v.Bytes)
	}
	return fmt.Sprintf("%v, %d bytes", v.Class, v.Bytes)
}

// reference classifies a frame by the README's classification rules. It
// is written from the rules, not from the C program. first is the length
// of the frame's first (linear) buffer: headers are read from it (rule 8);
// first >= len(frame) means one buffer.
func reference(frame []byte, first int) verdict {
	return refParse(frame, first, bpf.FrameEthernet, 0).verdict(len(frame))
}

// refParsed is what the rules make of a frame, and for the GSO rule where
// its L4 header starts (0: no IP header) and its protocol.
type refParsed struct {
	class    bpf.Class
	src, dst uint16
	l4       int
	proto    uint8
}

func (p refParsed) verdict(bytes int) verdict {
	return verdict{Class: p.class, Src: p.src, Dst: p.dst, Bytes: uint64(bytes)}
}

// refParse applies the rules to a frame that starts at start, with
// metaTags VLAN tags held in packet metadata (TC only).
func refParse(frame []byte, first int, start bpf.Frame, metaTags int) refParsed {
	hdrs := frame[:min(first, len(frame))]
	if start == bpf.FrameIP {
		return refIP(hdrs)
	}
	return refEthernet(hdrs, metaTags)
}

// hdrLen is the header bytes each GSO segment repeats (the TC rules): link
// + IP (+ extension headers) + L4 header (UDP 8, TCP data offset x 4).
func (p refParsed) hdrLen(frame []byte) int {
	switch {
	case p.l4 == 0:
		return 0
	case p.proto == protoUDP:
		return p.l4 + 8
	case p.proto == protoTCP && p.l4+20 <= len(frame):
		return p.l4 + int(frame[p.l4+12]>>4)*4
	}
	return p.l4
}

// refSegments applies the GSO rule to frame as it is on the wire (a tag
// held in metadata in place): gso_segs if > 0, else
// ceil((len - hdr) / gso_size) if gso_size > 0, else 1; and the bytes of
// all segments, each with its own headers.
func refSegments(p refParsed, frame []byte, gsoSegs, gsoSize uint32) (segs, bytes uint64) {
	hdr := p.hdrLen(frame)
	segs = 1
	switch {
	case gsoSegs > 0:
		segs = uint64(gsoSegs)
	case gsoSize > 0 && len(frame) > hdr:
		segs = (uint64(len(frame)-hdr) + uint64(gsoSize) - 1) / uint64(gsoSize)
	}
	return segs, uint64(len(frame)) + (segs-1)*uint64(hdr)
}

// Protocol numbers the rules name.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86DD
	ether8021Q  = 0x8100
	ether8021AD = 0x88A8

	protoHopByHop = 0
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoDestOpts = 60
)

var (
	malformed = refParsed{class: bpf.ClassMalformed}
	other     = refParsed{class: bpf.ClassOther}
)

// refEthernet applies rules 2-4 and hands IP on. metaTags tags in packet
// metadata count first against V.
func refEthernet(b []byte, metaTags int) refParsed {
	if len(b) < 14 { // rule 2
		return malformed
	}
	etherType := be16(b, 12)
	off := 14
	for range bpf.MaxVLANTags - metaTags { // rule 3
		if etherType != ether8021Q && etherType != ether8021AD {
			break
		}
		if len(b) < off+4 {
			return malformed
		}
		etherType = be16(b, off+2) // TCI, then the next EtherType
		off += 4
	}
	switch etherType { // rule 4; a VLAN tag left after V tags lands here too
	case etherIPv4:
		return refIPv4(b, off)
	case etherIPv6:
		return refIPv6(b, off)
	}
	return other
}

// refIP applies the rule of links without a link-layer header: the IP
// version is the first nibble.
func refIP(b []byte) refParsed {
	if len(b) < 1 {
		return malformed
	}
	switch b[0] >> 4 {
	case 4:
		return refIPv4(b, 0)
	case 6:
		return refIPv6(b, 0)
	}
	return malformed
}

// refIPv4 applies rule 5 to the IPv4 header at off of frame f.
func refIPv4(f []byte, off int) refParsed {
	b := f[off:]
	if len(b) < 20 {
		return malformed
	}
	version, ihl := b[0]>>4, int(b[0]&0x0f)
	if version != 4 || ihl < 5 || ihl*4 > len(b) {
		return malformed
	}
	l4 := refParsed{l4: off + ihl*4, proto: b[9]}
	if b[9] != protoUDP {
		l4.class = bpf.ClassOther
		return l4
	}
	if be16(b, 6)&0x1fff != 0 { // fragment offset: the low 13 bits of flags+offset
		l4.class = bpf.ClassFragment
		return l4
	}
	return refUDP(f, l4)
}

// refIPv6 applies rule 6 to the IPv6 header at base of frame f.
func refIPv6(f []byte, base int) refParsed {
	b := f[base:]
	if len(b) < 40 {
		return malformed
	}
	next := b[6]
	off := 40 // may run past len(b): only fixed parts are checked
	for range bpf.MaxIPv6ExtHeaders {
		fixed := 2
		if next == protoFragment {
			fixed = 8
		}
		isExt := next == protoHopByHop || next == protoRouting || next == protoDestOpts ||
			next == protoAH || next == protoFragment
		if !isExt {
			break
		}
		if off+fixed > len(b) {
			return malformed
		}
		h := b[off:]
		var size int
		switch next {
		case protoAH:
			size = (int(h[1]) + 2) * 4
		case protoFragment:
			if be16(h, 2)>>3 > 0 { // 13-bit offset above 2 reserved bits and M
				if h[0] == protoUDP {
					return refParsed{class: bpf.ClassFragment}
				}
				return other
			}
			size = 8
		default:
			size = (int(h[1]) + 1) * 8
		}
		next = h[0]
		off += size
	}
	l4 := refParsed{l4: base + off, proto: next}
	if next != protoUDP {
		l4.class = bpf.ClassOther
		return l4
	}
	return refUDP(f, l4) // rule 7; off may be past the end: no UDP bytes at all
}

// refUDP applies rule 7 to the UDP header at p.l4 of frame f.
func refUDP(f []byte, p refParsed) refParsed {
	if len(f) < p.l4+8 {
		p.class = bpf.ClassMalformed
		return p
	}
	p.class, p.src, p.dst = bpf.ClassUDP, be16(f, p.l4), be16(f, p.l4+2)
	return p
}

func be16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }
