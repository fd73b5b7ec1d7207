package bpf

import (
	"fmt"
	"slices"
)

// Config selects what one loaded program counts.
type Config struct {
	// CountSource counts source ports too (a second slot per UDP packet).
	// Off, it costs nothing: the branch is removed at load time.
	CountSource bool
	// Ports is an allow-list; other ports are summed into one "other"
	// slot. Empty means every port (a dense table of 65,536 slots).
	Ports []uint16
	// Frags loads the multi-buffer (xdp.frags) variant from the start.
	// Otherwise the plain one is used and xdp.frags only where the
	// interface needs it (ERANGE on attach).
	Frags bool
	// Frame is where frames start on the link (FrameOf tells).
	Frame Frame
}

// Role says which port of a UDP header a counter is for.
type Role int

// Port roles.
const (
	Destination Role = iota
	Source
)

func (r Role) String() string {
	if r == Source {
		return "source"
	}
	return "destination"
}

// counterSize is the size of struct counter in bytes.
const counterSize = 16

// portSlotBytes is the size of the port -> slot table (.bss): one u16 per port.
const portSlotBytes = DensePortSlots * 2

// pageSize is the kernel page size the counter array is rounded up to.
// Only used for the memory estimate; 4 KiB on every platform we build for
// except some arm64/ppc64 kernels, where the estimate is slightly low.
const pageSize = 4096

// Layout is where counters live in the per-CPU counter array.
type Layout struct {
	CPUs        int      // possible CPUs: one block each
	Ports       []uint16 // sorted allow-list; nil = dense
	PortSlots   int      // slots per role: 65536, or len(Ports)+1 ("other" last)
	SrcBase     int      // first source slot in a block; 0 = source not counted
	SlotsPerCPU int      // block size, a multiple of 4 slots (one cache line)
	Frame       Frame    // where frames start: a constant of the program
}

// NewLayout computes the layout for cfg on a machine with cpus possible CPUs.
func NewLayout(cfg Config, cpus int) (Layout, error) {
	if cpus < 1 {
		return Layout{}, fmt.Errorf("invalid CPU count %d", cpus)
	}
	l := Layout{CPUs: cpus, PortSlots: DensePortSlots, Frame: cfg.Frame}
	if len(cfg.Ports) > 0 {
		l.Ports = slices.Clone(cfg.Ports)
		slices.Sort(l.Ports)
		l.Ports = slices.Compact(l.Ports)
		l.PortSlots = len(l.Ports) + 1
	}
	end := slotPorts + l.PortSlots
	if cfg.CountSource {
		l.SrcBase = end
		end += l.PortSlots
	}
	l.SlotsPerCPU = (end + 3) &^ 3
	return l, nil
}

// Dense reports whether every port has its own slot.
func (l Layout) Dense() bool { return l.Ports == nil }

// Entries is the number of slots in the counter array.
func (l Layout) Entries() int { return l.CPUs * l.SlotsPerCPU }

// CounterBytes is the size of the counter array in kernel memory.
func (l Layout) CounterBytes() uint64 {
	n := uint64(l.Entries()) * counterSize
	return (n + pageSize - 1) &^ (pageSize - 1)
}

// KernelMemory estimates the kernel memory of one loaded instance's maps:
// the counter array (CPUs x SlotsPerCPU x 16 bytes) plus the 128 KiB
// port -> slot table. The program itself adds a few KiB.
func (l Layout) KernelMemory() uint64 {
	return l.CounterBytes() + portSlotBytes
}

// slot returns the slot of port within a role's region and whether the
// port has a slot of its own (false: it is counted in "other").
func (l Layout) slot(port uint16) (int, bool) {
	if l.Dense() {
		return int(port), true
	}
	i, found := slices.BinarySearch(l.Ports, port)
	if !found {
		return len(l.Ports), false
	}
	return i, true
}

// base returns the first slot of a role's region, or -1 if not counted.
func (l Layout) base(r Role) int {
	if r == Source {
		if l.SrcBase == 0 {
			return -1
		}
		return l.SrcBase
	}
	return slotPorts
}
