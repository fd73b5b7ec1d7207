package bpf

import (
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/btf"
)

// Go's constants and struct layouts equal the C ones (via the generated
// bindings, which bpf2go derives from the object's BTF).
func TestConstantsMatchC(t *testing.T) {
	pairs := []struct {
		name   string
		goVal  int
		cValue int
	}{
		{"MAX_VLAN_TAGS", MaxVLANTags, int(xdpUdpPortsXdpUdpPortsLimitsMAX_VLAN_TAGS)},
		{"MAX_IPV6_EXT_HEADERS", MaxIPv6ExtHeaders, int(xdpUdpPortsXdpUdpPortsLimitsMAX_IPV6EXT_HEADERS)},
		{"DENSE_PORT_SLOTS", DensePortSlots, int(xdpUdpPortsXdpUdpPortsLimitsDENSE_PORT_SLOTS)},
		{"CLASS_FRAGMENT", int(ClassFragment), int(xdpUdpPortsXdpUdpPortsClassCLASS_FRAGMENT)},
		{"CLASS_OTHER", int(ClassOther), int(xdpUdpPortsXdpUdpPortsClassCLASS_OTHER)},
		{"CLASS_MALFORMED", int(ClassMalformed), int(xdpUdpPortsXdpUdpPortsClassCLASS_MALFORMED)},
		{"CLASS_UDP", int(ClassUDP), int(xdpUdpPortsXdpUdpPortsClassCLASS_UDP)},
		{"SLOT_PORTS", slotPorts, int(xdpUdpPortsXdpUdpPortsClassSLOT_PORTS)},
	}
	for _, p := range pairs {
		if p.goVal != p.cValue {
			t.Errorf("%s: Go %d, C %d", p.name, p.goVal, p.cValue)
		}
	}

	// struct counter is Counter, read in place from the mmap'ed array.
	spec, err := loadXdpUdpPorts()
	if err != nil {
		t.Fatal(err)
	}
	var st *btf.Struct
	if err := spec.Types.TypeByName("counter", &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != counterSize || uintptr(st.Size) != unsafe.Sizeof(Counter{}) {
		t.Errorf("struct counter is %d bytes, Counter %d, counterSize %d", st.Size, unsafe.Sizeof(Counter{}), counterSize)
	}
	wantOffsets := map[string]uintptr{"packets": unsafe.Offsetof(Counter{}.Packets), "bytes": unsafe.Offsetof(Counter{}.Bytes)}
	for _, m := range st.Members {
		if off, ok := wantOffsets[m.Name]; !ok || uintptr(m.Offset.Bytes()) != off {
			t.Errorf("struct counter member %s at %d, Go at %d", m.Name, m.Offset.Bytes(), off)
		}
	}
	if len(st.Members) != len(wantOffsets) {
		t.Errorf("struct counter has %d members, Counter %d", len(st.Members), len(wantOffsets))
	}
	var slots *btf.Var
	if err := spec.Types.TypeByName("port_slot", &slots); err != nil {
		t.Fatal(err)
	}
	if size, _ := btf.Sizeof(slots.Type); size != portSlotBytes {
		t.Errorf("port_slot is %d bytes, want %d", size, portSlotBytes)
	}
}
