package bpf

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
)

// Loader holds the parsed program (the ELF is parsed once) and what the
// running kernel supports. It is safe for concurrent use.
type Loader struct {
	spec     *ebpf.CollectionSpec
	cpus     int
	frags    bool
	netlink  bool // attach XDP through netlink: no XDP bpf_link (Linux < 5.9)
	legacyTC bool // attach TC as clsact filters: tcx forced off (tests)
	qdiscs   *qdiscs

	mu         sync.Mutex
	configured map[string]*ebpf.CollectionSpec // by layout; read-only
}

// NewLoader parses the embedded program and probes the kernel.
func NewLoader() (*Loader, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_MEMLOCK for BPF maps: %w", err)
	}
	spec, err := loadXdpUdpPorts()
	if err != nil {
		return nil, err
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("counting possible CPUs: %w", err)
	}
	return &Loader{
		spec: spec, cpus: cpus, frags: probeFrags(), netlink: useNetlink(), legacyTC: forceLegacyTC(),
		qdiscs: newQdiscs(), configured: map[string]*ebpf.CollectionSpec{},
	}, nil
}

// NetlinkAttach reports whether programs are attached through netlink
// because the kernel has no XDP bpf_link (Linux < 5.9): then they outlive
// a crashed process.
func (l *Loader) NetlinkAttach() bool { return l.netlink }

// CPUs is the number of possible CPUs (one counter block each).
func (l *Loader) CPUs() int { return l.cpus }

// FragsSupported reports whether the kernel accepts xdp.frags programs (5.18+).
func (l *Loader) FragsSupported() bool { return l.frags }

// Layout returns the counter layout cfg would get on this machine.
func (l *Loader) Layout(cfg Config) (Layout, error) { return NewLayout(cfg, l.cpus) }

// probeFrags loads a minimal xdp.frags program.
func probeFrags() bool {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		Flags:        fragsFlag,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		return false
	}
	prog.Close()
	return true
}

// fragsFlag is BPF_F_XDP_HAS_FRAGS.
const fragsFlag = 1 << 5

// Load creates the maps for cfg. Each call makes an independent instance
// with its own counters; its programs are loaded when first attached (or
// by Program), and share its maps.
func (l *Loader) Load(cfg Config) (*Counters, error) {
	layout, err := l.Layout(cfg)
	if err != nil {
		return nil, err
	}
	spec, err := l.configuredSpec(layout)
	if err != nil {
		return nil, err
	}
	c := l.newCounters(layout, spec, cfg)
	coll, err := ebpf.NewCollectionWithOptions(&ebpf.CollectionSpec{
		Maps: spec.Maps, Variables: spec.Variables, Types: spec.Types, ByteOrder: spec.ByteOrder,
	}, ebpf.CollectionOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating the counter maps: %w", err)
	}
	c.maps = coll.Maps
	if err := c.mmap(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (l *Loader) newCounters(layout Layout, spec *ebpf.CollectionSpec, cfg Config) *Counters {
	c := &Counters{layout: layout, spec: spec, variant: Plain, fragsOK: l.frags, loader: l}
	if cfg.Frags && l.frags {
		c.variant = Frags
	}
	return c
}

// configuredSpec returns the program configured for layout. Instances
// with the same layout share it (it holds a 128 KiB table): a host with
// hundreds of interfaces keeps one copy.
func (l *Loader) configuredSpec(layout Layout) (*ebpf.CollectionSpec, error) {
	key := fmt.Sprint(layout.CPUs, layout.SlotsPerCPU, layout.SrcBase, layout.Frame, layout.Ports)
	l.mu.Lock()
	defer l.mu.Unlock()
	if spec := l.configured[key]; spec != nil {
		return spec, nil
	}
	spec := l.spec.Copy()
	if err := configure(spec, layout); err != nil {
		return nil, err
	}
	l.configured[key] = spec
	return spec, nil
}

// configure sets the load-time constants, the port -> slot table and the
// size of the counter array.
func configure(spec *ebpf.CollectionSpec, l Layout) error {
	spec.Maps[xdpUdpPortsMapCounters].MaxEntries = uint32(l.Entries())
	consts := map[string]any{
		xdpUdpPortsVarSlotsPerCpu: uint32(l.SlotsPerCPU),
		xdpUdpPortsVarSrcBase:     uint32(l.SrcBase),
		xdpUdpPortsVarCountSource: boolByte(l.SrcBase != 0),
		xdpUdpPortsVarUsePortSlot: boolByte(!l.Dense()),
		xdpUdpPortsVarFrameStart:  uint8(l.Frame),
	}
	if !l.Dense() {
		table := make([]uint16, DensePortSlots)
		for i := range table {
			table[i] = uint16(len(l.Ports)) // "other"
		}
		for i, p := range l.Ports {
			table[p] = uint16(i)
		}
		consts[xdpUdpPortsVarPortSlot] = table
	}
	for name, v := range consts {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("program has no variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

var programNames = [...]string{Plain: xdpUdpPortsProgXdpUdpPorts, Frags: xdpUdpPortsProgXdpUdpFrags, TC: xdpUdpPortsProgTcUdpPorts}

// Program returns the loaded program of variant v, loading it on first use
// so that it shares this instance's maps.
func (c *Counters) Program(v Variant) (*ebpf.Program, error) {
	if v < 0 || v >= numVariants {
		return nil, fmt.Errorf("invalid program variant %d", int(v))
	}
	if c.progs[v] != nil {
		return c.progs[v], nil
	}
	if v == Frags && !c.fragsOK {
		return nil, fmt.Errorf("loading %s program: the kernel does not support multi-buffer XDP (needs Linux 5.18): %w", v, ebpf.ErrNotSupported)
	}
	// NewCollection copies the map and program specs it uses, so the
	// shared configured spec is only read; only its types are copied.
	spec := &ebpf.CollectionSpec{
		Maps:      c.spec.Maps,
		Programs:  map[string]*ebpf.ProgramSpec{programNames[v]: c.spec.Programs[programNames[v]]},
		Variables: c.spec.Variables,
		Types:     c.spec.Types.Copy(),
		ByteOrder: c.spec.ByteOrder,
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: c.maps})
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("loading %s program: %w (verifier log: %+v)", v, err, verr)
		}
		return nil, fmt.Errorf("loading %s program: %w", v, err)
	}
	c.progs[v] = coll.Programs[programNames[v]]
	return c.progs[v], nil
}
