//go:build e2e && linux

package e2e

import (
	"encoding/binary"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// Raw frames that exercise the summary's non-UDP classes (README,
// "Classification rules"); the veth delivers them as given, to XDP (the
// built-in variant) and to TC (execd).
const (
	fragmentLen  = 14 + 20 + 16 // IPv4 header + 16 bytes of a later fragment
	malformedLen = 14 + 10      // IPv4 EtherType, 10 bytes of header
	otherLen     = 14 + 46      // EtherType 0x88B5 (local experimental)
)

func ethernet(p *testnet.Pair, etherType uint16, size int) []byte {
	f := make([]byte, size)
	copy(f[0:6], p.ReceiverMAC)
	copy(f[6:12], p.SenderMAC)
	binary.BigEndian.PutUint16(f[12:14], etherType)
	return f
}

func rawFrames(p *testnet.Pair) [][]byte {
	var frames [][]byte
	for i := 0; i < fragmentFrames; i++ {
		f := ethernet(p, 0x0800, fragmentLen)
		ip := f[14:]
		ip[0] = 0x45                                       // version 4, IHL 5
		binary.BigEndian.PutUint16(ip[2:4], 20+16)         // total length
		binary.BigEndian.PutUint16(ip[4:6], uint16(100+i)) // id
		binary.BigEndian.PutUint16(ip[6:8], 2)             // offset 16 bytes, no MF
		ip[8], ip[9] = 64, 17                              // TTL, UDP
		copy(ip[12:16], p.SenderV4)
		copy(ip[16:20], p.ReceiverV4)
		frames = append(frames, f)
	}
	for i := 0; i < malformedFrames; i++ {
		f := ethernet(p, 0x0800, malformedLen)
		f[14] = 0x45
		frames = append(frames, f)
	}
	for i := 0; i < otherFrames; i++ {
		frames = append(frames, ethernet(p, 0x88B5, otherLen))
	}
	return frames
}

// rawBytes is the size of all raw frames.
func rawBytes() int64 {
	return fragmentFrames*fragmentLen + malformedFrames*malformedLen + otherFrames*otherLen
}
