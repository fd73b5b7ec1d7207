package bpf

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Counters is one loaded instance of the program: its maps, the program
// variants loaded so far and a read-only mapping of the counter array.
// Reads are not safe for concurrent use; Close must not race with them.
type Counters struct {
	layout  Layout
	spec    *ebpf.CollectionSpec // configured, shared, read-only: loads a variant
	variant Variant              // the XDP variant attach starts with
	fragsOK bool
	loader  *Loader // how the kernel attaches (netlink, legacy TC) and shared state
	maps    map[string]*ebpf.Map
	progs   [numVariants]*ebpf.Program

	mem   []byte    // mmap of the counter array
	slots []Counter // mem viewed as slots
}

// Layout returns where this instance keeps its counters.
func (c *Counters) Layout() Layout { return c.layout }

// CounterMap returns the counter array map (for pinning and inspection).
func (c *Counters) CounterMap() *ebpf.Map { return c.maps[xdpUdpPortsMapCounters] }

func (c *Counters) mmap() error {
	m := c.CounterMap()
	size := int(c.layout.CounterBytes())
	mem, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mapping the counter array (%d bytes): %w", size, err)
	}
	c.mem = mem
	c.slots = unsafe.Slice((*Counter)(unsafe.Pointer(&mem[0])), c.layout.Entries())
	return nil
}

// sumRegion adds up n slots from base in every CPU's block.
func (c *Counters) sumRegion(dst []Counter, base int) {
	spc := c.layout.SlotsPerCPU
	copy(dst, c.slots[base:base+len(dst)])
	for cpu := 1; cpu < c.layout.CPUs; cpu++ {
		src := c.slots[cpu*spc+base : cpu*spc+base+len(dst)]
		for i := range src {
			dst[i].Packets += src[i].Packets
			dst[i].Bytes += src[i].Bytes
		}
	}
}

func (c *Counters) sumSlot(slot int) Counter {
	var sum Counter
	for cpu := 0; cpu < c.layout.CPUs; cpu++ {
		sum.add(c.slots[cpu*c.layout.SlotsPerCPU+slot])
	}
	return sum
}

// Class returns the counter of a non-UDP class summed over CPUs (for UDP
// see Snapshot's Summary).
func (c *Counters) Class(cl Class) Counter {
	if cl == ClassUDP {
		panic("Counters.Class: UDP is counted per port; use Snapshot")
	}
	return c.sumSlot(int(cl))
}

// Port returns one port's counter for role r summed over CPUs. With an
// allow-list, an unlisted port returns the "other" counter.
func (c *Counters) Port(r Role, port uint16) Counter {
	base := c.layout.base(r)
	if base < 0 {
		return Counter{}
	}
	slot, _ := c.layout.slot(port)
	return c.sumSlot(base + slot)
}

// Snapshot reads every counter into s, reusing its slices: one Snapshot
// used for many instances in turn needs no memory per instance.
func (c *Counters) Snapshot(s *Snapshot) {
	if cap(s.sums) < c.layout.PortSlots {
		s.sums = make([]Counter, c.layout.PortSlots)
	}
	sums := s.sums[:c.layout.PortSlots]
	var udp Counter
	s.Destination, s.DestinationOther, udp = c.role(s.Destination[:0], sums, Destination)
	s.Source, s.SourceOther, _ = c.role(s.Source[:0], sums, Source)

	frag, other, malformed := c.sumSlot(int(ClassFragment)), c.sumSlot(int(ClassOther)), c.sumSlot(int(ClassMalformed))
	s.Summary = Summary{
		Packets:          udp.Packets + frag.Packets + other.Packets + malformed.Packets,
		Bytes:            udp.Bytes + frag.Bytes + other.Bytes + malformed.Bytes,
		UDPPackets:       udp.Packets,
		UDPBytes:         udp.Bytes,
		UDPFragments:     frag.Packets,
		OtherPackets:     other.Packets,
		MalformedPackets: malformed.Packets,
	}
}

// role collects the ports with packets of one role, the "other" slot and
// the role's total.
func (c *Counters) role(dst []PortCount, sums []Counter, r Role) (ports []PortCount, other, total Counter) {
	base := c.layout.base(r)
	if base < 0 {
		return dst, Counter{}, Counter{}
	}
	c.sumRegion(sums, base)
	for slot, s := range sums {
		total.add(s)
		if s.Packets == 0 {
			continue
		}
		if c.layout.Dense() {
			dst = append(dst, PortCount{Port: uint16(slot), Counter: s})
		} else if slot < len(c.layout.Ports) {
			dst = append(dst, PortCount{Port: c.layout.Ports[slot], Counter: s})
		} else {
			other = s
		}
	}
	return dst, other, total
}

// Close detaches nothing (attachments are closed by their owner) and
// frees the programs, maps and mapping. It is idempotent.
func (c *Counters) Close() error {
	var errs []error
	if c.mem != nil {
		errs = append(errs, unix.Munmap(c.mem))
		c.mem, c.slots = nil, nil
	}
	for i, p := range c.progs {
		if p != nil {
			errs = append(errs, p.Close())
			c.progs[i] = nil
		}
	}
	for _, m := range c.maps {
		errs = append(errs, m.Close())
	}
	c.maps = nil
	return errors.Join(errs...)
}
