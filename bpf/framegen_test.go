package bpf_test

import (
	"encoding/binary"
	"iter"
	"math/rand/v2"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
)

// frameGen generates the property test's frames from a seed: valid frames
// of every class (0 to V+1 VLAN tags, IPv4 with options and fragments,
// IPv6 with 0 to N+2 extension headers, other EtherTypes, UDP ports 0 and
// 65535, random length fields, sizes up to jumbo), each followed by
// mutated copies (truncations, flipped header bytes, random
// version/IHL/flags/offsets/next headers/EtherTypes). It knows nothing of
// the classification rules: the reference decides.
type frameGen struct {
	rnd *rand.Rand
}

func newFrameGen(seed uint64) *frameGen {
	return &frameGen{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// shape is where a generated frame's headers start, to aim mutations.
type shape struct {
	l3, l4 int // network header; what follows the last IP/extension header
	ipv6   bool
}

// maxCutAll bounds the offsets a frame is cut at one by one (long IPv6
// chains would yield thousands of cuts each; random cuts cover them).
const maxCutAll = 256

// frames yields the catalogue, then valid frames each followed by
// mutations; every 32nd valid frame is also cut at every header offset.
func (g *frameGen) frames() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for _, c := range frames.Catalogue() {
			if !yield(c.Frame) {
				return
			}
		}
		for i := 0; ; i++ {
			f, s := g.valid()
			if !yield(f) {
				return
			}
			if i%32 == 0 {
				for n := minFrame; n < min(len(f), s.l4+12, maxCutAll); n++ {
					if !yield(f[:n]) {
						return
					}
				}
			}
			for range 3 {
				if !yield(g.mutate(f, s)) {
					return
				}
			}
		}
	}
}

// valid builds one well-formed frame; its class is up to the generator's dice.
func (g *frameGen) valid() ([]byte, shape) {
	b := g.bytes(nil, 12) // MAC addresses
	tags := g.pick(50, 20, 20, 10)
	for range tags {
		b = be16append(b, g.oneOf(0x8100, 0x88a8))
		b = be16append(b, uint16(g.rnd.Uint32()))
	}
	var s shape
	switch g.pick(45, 45, 10) {
	case 0:
		b = be16append(b, 0x0800)
		s.l3 = len(b)
		b = g.ipv4(b)
	case 1:
		b = be16append(b, 0x86dd)
		s.l3, s.ipv6 = len(b), true
		b = g.ipv6(b)
	default:
		b = be16append(b, g.oneOf(0x0806, 0x88cc, 0x8100, 0x88a8, 0x0040, 0x05dc, uint16(g.rnd.Uint32())))
		s.l3 = len(b)
	}
	s.l4 = len(b)
	b = be16append(b, g.port())
	b = be16append(b, g.port())
	b = be16append(b, uint16(g.payloadSize()+8))
	b = be16append(b, uint16(g.rnd.Uint32()))
	b = g.bytes(b, g.payloadSize())
	g.fixLengths(b, s)
	return b, s
}

func (g *frameGen) ipv4(b []byte) []byte {
	ihl := 5
	if g.rnd.IntN(10) < 3 {
		ihl = 6 + g.rnd.IntN(10)
	}
	start := len(b)
	b = g.bytes(b, ihl*4)
	h := b[start:]
	h[0] = 0x40 | byte(ihl)
	switch g.pick(70, 10, 20) {
	case 0:
		binary.BigEndian.PutUint16(h[6:], g.oneOf(0, 0x4000)) // DF or nothing
	case 1:
		binary.BigEndian.PutUint16(h[6:], 0x2000) // MF, offset 0
	default:
		binary.BigEndian.PutUint16(h[6:], uint16(g.rnd.Uint32())|g.oneOf(0, 1)) // any flags, offset > 0 mostly
	}
	h[9] = 17
	if g.rnd.IntN(100) < 15 {
		h[9] = byte(g.oneOf(6, 1, 50, 51, 47, uint16(g.rnd.IntN(256))))
	}
	return b
}

// ipv6 builds the fixed header and an extension chain of 0 to N+2
// headers: known types of random lengths (sometimes all long, so that the
// chain runs past the first buffer: rule 8), fragments of random offsets,
// sometimes an unknown type, ending mostly in UDP.
func (g *frameGen) ipv6(b []byte) []byte {
	start := len(b)
	b = g.bytes(b, 40)
	b[start] = 0x60 | b[start]&0x0f
	nextAt := start + 6
	n := 0
	if g.rnd.IntN(10) >= 3 {
		n = 1 + g.rnd.IntN(bpf.MaxIPv6ExtHeaders+2)
	}
	long := g.rnd.IntN(100) < 4 // headers of ~1-2 KB: the chain crosses the first buffer
	for range n {
		typ := byte(g.oneOf(0, 43, 60, 51, 44))
		if g.rnd.IntN(100) < 5 {
			typ = g.upperNext()
		}
		b[nextAt] = typ
		hdr := len(b)
		lenField := byte(g.rnd.IntN(4))
		if long || g.rnd.IntN(100) < 5 {
			lenField = byte(g.rnd.IntN(256))
		}
		if long {
			lenField |= 0x80
		}
		size := (int(lenField) + 1) * 8
		switch typ {
		case 51:
			size = (int(lenField) + 2) * 4
		case 44:
			size = 8
		}
		b = g.bytes(b, size)
		b[hdr+1] = lenField
		if typ == 44 {
			off := uint16(0) // offset (13 bits) << 3 | 2 reserved bits | M
			if g.rnd.IntN(2) == 0 {
				off = g.oneOf(1<<3, 0xfff8, uint16(g.rnd.Uint32())&^7)
			}
			binary.BigEndian.PutUint16(b[hdr+2:], off|uint16(g.rnd.IntN(8)))
		}
		nextAt = hdr
	}
	b[nextAt] = 17
	if g.rnd.IntN(100) < 15 {
		b[nextAt] = g.upperNext()
	}
	return b
}

// upperNext is a next header the walk does not enter.
func (g *frameGen) upperNext() byte {
	return byte(g.oneOf(6, 58, 50, 59, 135, 139, 140, uint16(g.rnd.IntN(256))))
}

// fixLengths makes the length fields right most of the time: the rules
// ignore them, so wrong ones must change nothing.
func (g *frameGen) fixLengths(b []byte, s shape) {
	if g.rnd.IntN(5) == 0 || s.l3 >= s.l4 {
		return
	}
	if s.ipv6 {
		binary.BigEndian.PutUint16(b[s.l3+4:], uint16(len(b)-s.l3-40))
	} else {
		binary.BigEndian.PutUint16(b[s.l3+2:], uint16(len(b)-s.l3))
	}
	binary.BigEndian.PutUint16(b[s.l4+4:], uint16(len(b)-s.l4))
}

// mutate returns a copy of f with one to three random changes.
func (g *frameGen) mutate(f []byte, s shape) []byte {
	m := append([]byte(nil), f...)
	hdrEnd := min(len(m), s.l4+16)
	for range 1 + g.rnd.IntN(3) {
		switch g.rnd.IntN(9) {
		case 0: // truncate, mostly inside the headers
			cut := minFrame + g.rnd.IntN(max(hdrEnd-minFrame, 1))
			if g.rnd.IntN(4) == 0 {
				cut = minFrame + g.rnd.IntN(max(len(m)-minFrame, 1))
			}
			m = m[:min(cut, len(m))]
		case 1, 2: // flip header bytes
			for range 1 + g.rnd.IntN(4) {
				m[g.rnd.IntN(min(len(m), hdrEnd))] ^= byte(1 + g.rnd.IntN(255))
			}
		case 3: // version and IHL
			g.set(m, s.l3, byte(g.rnd.IntN(256)))
		case 4: // IPv4 flags and fragment offset, or IPv6 flow label
			g.set(m, s.l3+6, byte(g.oneOf(0, 0x20, 0x40, 0x1f, uint16(g.rnd.IntN(256)))))
			g.set(m, s.l3+7, byte(g.oneOf(0, 1, uint16(g.rnd.IntN(256)))))
		case 5: // protocol / next header
			at := s.l3 + 9
			if s.ipv6 {
				at = s.l3 + 6
			}
			g.set(m, at, byte(g.oneOf(17, 0, 43, 44, 51, 60, 6, uint16(g.rnd.IntN(256)))))
		case 6: // an EtherType or VLAN TPID
			at := 12 + 4*g.rnd.IntN(bpf.MaxVLANTags+2)
			v := g.oneOf(0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, uint16(g.rnd.Uint32()))
			if at+2 <= len(m) {
				binary.BigEndian.PutUint16(m[at:], v)
			}
		case 7: // length fields
			for _, at := range []int{s.l3 + 2, s.l3 + 4, s.l4 + 4} {
				if at+2 <= len(m) {
					binary.BigEndian.PutUint16(m[at:], uint16(g.rnd.Uint32()))
				}
			}
		case 8: // grow or shrink the tail
			if g.rnd.IntN(2) == 0 {
				m = g.bytes(m, g.payloadSize())
			} else {
				m = m[:max(minFrame, len(m)-g.rnd.IntN(64))]
			}
		}
	}
	return m
}

// set writes v at off if the frame is that long.
func (g *frameGen) set(m []byte, off int, v byte) {
	if off < len(m) {
		m[off] = v
	}
}

// port favours the edges (0, 65535) and a few common ports.
func (g *frameGen) port() uint16 {
	switch g.rnd.IntN(10) {
	case 0:
		return g.oneOf(0, 65535)
	case 1, 2:
		return g.oneOf(53, 123, 443, 4789, 7777)
	}
	return uint16(g.rnd.Uint32())
}

// payloadSize is mostly small, sometimes a full MTU, sometimes around the
// test run's first buffer (~3.5 KB), sometimes jumbo.
func (g *frameGen) payloadSize() int {
	switch g.pick(70, 20, 7, 3) {
	case 0:
		return g.rnd.IntN(64)
	case 1:
		return 64 + g.rnd.IntN(1450)
	case 2:
		return 3300 + g.rnd.IntN(400)
	}
	return 3700 + g.rnd.IntN(5400)
}

// pick returns i with probability weights[i]/sum.
func (g *frameGen) pick(weights ...int) int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	x := g.rnd.IntN(sum)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

func (g *frameGen) oneOf(vs ...uint16) uint16 { return vs[g.rnd.IntN(len(vs))] }

// bytes appends n random bytes.
func (g *frameGen) bytes(b []byte, n int) []byte {
	for n >= 8 {
		b = binary.LittleEndian.AppendUint64(b, g.rnd.Uint64())
		n -= 8
	}
	for range n {
		b = append(b, byte(g.rnd.Uint32()))
	}
	return b
}

func be16append(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
