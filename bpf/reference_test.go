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
	v := verdict{Bytes: uint64(len(frame))} // rule 1 and "bytes": the whole frame
	hdrs := frame[:min(first, len(frame))]
	v.Class, v.Src, v.Dst = refEthernet(hdrs)
	return v
}

// Protocol numbers the rules name.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86DD
	ether8021Q  = 0x8100
	ether8021AD = 0x88A8

	protoHopByHop = 0
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoDestOpts = 60
)

// refEthernet applies rules 2-4 and hands IP on.
func refEthernet(b []byte) (bpf.Class, uint16, uint16) {
	if len(b) < 14 { // rule 2
		return bpf.ClassMalformed, 0, 0
	}
	etherType := be16(b, 12)
	b = b[14:]
	for range bpf.MaxVLANTags { // rule 3
		if etherType != ether8021Q && etherType != ether8021AD {
			break
		}
		if len(b) < 4 {
			return bpf.ClassMalformed, 0, 0
		}
		etherType = be16(b, 2) // TCI, then the next EtherType
		b = b[4:]
	}
	switch etherType { // rule 4; a VLAN tag left after V tags lands here too
	case etherIPv4:
		return refIPv4(b)
	case etherIPv6:
		return refIPv6(b)
	}
	return bpf.ClassOther, 0, 0
}

// refIPv4 applies rule 5.
func refIPv4(b []byte) (bpf.Class, uint16, uint16) {
	if len(b) < 20 {
		return bpf.ClassMalformed, 0, 0
	}
	version, ihl := b[0]>>4, int(b[0]&0x0f)
	if version != 4 || ihl < 5 || ihl*4 > len(b) {
		return bpf.ClassMalformed, 0, 0
	}
	if b[9] != protoUDP {
		return bpf.ClassOther, 0, 0
	}
	if be16(b, 6)&0x1fff != 0 { // fragment offset: the low 13 bits of flags+offset
		return bpf.ClassFragment, 0, 0
	}
	return refUDP(b[ihl*4:])
}

// refIPv6 applies rule 6.
func refIPv6(b []byte) (bpf.Class, uint16, uint16) {
	if len(b) < 40 {
		return bpf.ClassMalformed, 0, 0
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
			return bpf.ClassMalformed, 0, 0
		}
		h := b[off:]
		var size int
		switch next {
		case protoAH:
			size = (int(h[1]) + 2) * 4
		case protoFragment:
			if be16(h, 2)>>3 > 0 { // 13-bit offset above 2 reserved bits and M
				if h[0] == protoUDP {
					return bpf.ClassFragment, 0, 0
				}
				return bpf.ClassOther, 0, 0
			}
			size = 8
		default:
			size = (int(h[1]) + 1) * 8
		}
		next = h[0]
		off += size
	}
	if next != protoUDP {
		return bpf.ClassOther, 0, 0
	}
	if off > len(b) {
		return bpf.ClassMalformed, 0, 0 // rule 7: no UDP bytes left at all
	}
	return refUDP(b[off:])
}

// refUDP applies rule 7.
func refUDP(b []byte) (bpf.Class, uint16, uint16) {
	if len(b) < 8 {
		return bpf.ClassMalformed, 0, 0
	}
	return bpf.ClassUDP, be16(b, 0), be16(b, 2)
}

func be16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }
