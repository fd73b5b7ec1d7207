package frames

import (
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

func TestCatalogueShapes(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Catalogue() {
		if seen[c.Name] {
			t.Errorf("duplicate case %q", c.Name)
		}
		seen[c.Name] = true
		if len(c.Frame) < EthernetLen {
			t.Errorf("%s: %d bytes, BPF_PROG_TEST_RUN needs %d", c.Name, len(c.Frame), EthernetLen)
		}
		if big := len(c.Frame) > 3000; big != c.Multi {
			t.Errorf("%s: %d bytes but Multi=%v", c.Name, len(c.Frame), c.Multi)
		}
	}
	for name, size := range map[string]int{"ipv4-udp-64": 64, "ipv4-udp-1500": 1500, "ipv4-udp-jumbo-9000": 9000, "tcp-64": 64, "arp": 60} {
		if c, _ := Lookup(name); len(c.Frame) != size {
			t.Errorf("%s: %d bytes, want %d", name, len(c.Frame), size)
		}
	}
}

// TestCatalogueDecodes checks the UDP cases with gopacket's own decoder
// (which does not reassemble fragments, so those are skipped).
func TestCatalogueDecodes(t *testing.T) {
	for _, c := range Catalogue() {
		if c.Class != bpf.ClassUDP || strings.Contains(c.Name, "frag") {
			continue
		}
		p := gopacket.NewPacket(c.Frame, layers.LayerTypeEthernet, gopacket.Default)
		u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			t.Errorf("%s: gopacket finds no UDP layer: %v", c.Name, p)
			continue
		}
		if uint16(u.SrcPort) != c.Src || uint16(u.DstPort) != c.Dst {
			t.Errorf("%s: gopacket decodes %d -> %d, catalogue says %d -> %d", c.Name, u.SrcPort, u.DstPort, c.Src, c.Dst)
		}
	}
}

func TestBuilderSizes(t *testing.T) {
	for _, size := range []int{60, 64, 1500, 9000} {
		if n := len(IPv4UDP(size, 1, 2)); n != size {
			t.Errorf("IPv4UDP(%d) is %d bytes", size, n)
		}
	}
	for _, size := range []int{62, 64, 1500, 9000} {
		if n := len(IPv6UDP(size, 1, 2)); n != size {
			t.Errorf("IPv6UDP(%d) is %d bytes", size, n)
		}
	}
}
