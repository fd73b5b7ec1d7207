//go:build linux

package bench

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// xdpPass is the XDP_PASS return code.
const xdpPass = 2

// tcUnspec is TC_ACT_UNSPEC (= TCX_NEXT, -1) as a test run returns it:
// the verdict of our TC program, and of the bare one.
const tcUnspec = 0xffffffff

// fragsFlag is BPF_F_XDP_HAS_FRAGS: the program accepts multi-buffer frames.
const fragsFlag = 1 << 5

// Baselines are the hand-written programs every measurement of ours is put
// next to, loaded once per run.
type Baselines struct {
	Bare      *ebpf.Program // XDP_PASS and nothing else: the floor
	BareFrags *ebpf.Program // the same, flagged xdp.frags (multi-buffer frames)
	BareTC    *ebpf.Program // SCHED_CLS returning TC_ACT_UNSPEC and nothing else: the TC floor
	Seed      *ebpf.Program // the seed's approach, see seedProgram
	SeedPrint *ebpf.Program // Seed plus one bpf_trace_printk per packet
	SeedMap   *ebpf.Map     // Seed's hash, shared by Seed and SeedPrint
}

// LoadBaselines loads the bare and seed-equivalent programs.
func LoadBaselines() (*Baselines, error) {
	b := &Baselines{}
	var err error
	if b.Bare, err = bareProgram(0); err != nil {
		return nil, err
	}
	if b.BareFrags, err = bareProgram(fragsFlag); err != nil {
		b.Close()
		return nil, err
	}
	if b.BareTC, err = bareTCProgram(); err != nil {
		b.Close()
		return nil, err
	}
	b.SeedMap, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "seed_ports",
		Type:       ebpf.Hash,
		KeySize:    4,
		ValueSize:  16,
		MaxEntries: 64,
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("creating the seed's hash map: %w", err)
	}
	if b.Seed, err = seedProgram(b.SeedMap, false); err != nil {
		b.Close()
		return nil, err
	}
	if b.SeedPrint, err = seedProgram(b.SeedMap, true); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Close releases every program and map.
func (b *Baselines) Close() error {
	var errs []error
	for _, p := range []*ebpf.Program{b.Bare, b.BareFrags, b.BareTC, b.Seed, b.SeedPrint} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	if b.SeedMap != nil {
		errs = append(errs, b.SeedMap.Close())
	}
	return errors.Join(errs...)
}

func bareProgram(flags uint32) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bench_bare",
		Type:         ebpf.XDP,
		Flags:        flags,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("loading the bare XDP_PASS program: %w", err)
	}
	return p, nil
}

// bareTCProgram is the least a TC program does: return TC_ACT_UNSPEC
// (TCX_NEXT), which is what ours returns.
func bareTCProgram() (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bench_bare_tc",
		Type:         ebpf.SchedCLS,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()},
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("loading the bare TC program: %w", err)
	}
	return p, nil
}

// seedProgram is the approach this project replaced, rebuilt by hand: IPv4
// only (Ethernet, no VLAN), UDP read at IHL × 4, the destination port as
// the key of a 64-entry hash, packets and bytes added atomically, the entry
// created on first sight. With printk it also calls bpf_trace_printk once
// per packet, before anything else, as the seed did.
func seedProgram(m *ebpf.Map, printk bool) (*ebpf.Program, error) {
	const (
		ethHlen  = 14
		udpHlen  = 8
		keyOff   = -4  // u32 key on the stack
		valueOff = -24 // struct { u64 packets, bytes } on the stack
		fmtOff   = -32 // printk format on the stack
	)
	var insns asm.Instructions
	insns = append(insns, asm.Mov.Reg(asm.R6, asm.R1))
	if printk {
		// "len %u\n\0", little endian.
		format := int64(0)
		for i, ch := range []byte("len %u\n\x00") {
			format |= int64(ch) << (8 * i)
		}
		insns = append(insns,
			asm.LoadMem(asm.R2, asm.R6, 0, asm.Word),
			asm.LoadMem(asm.R3, asm.R6, 4, asm.Word),
			asm.Sub.Reg(asm.R3, asm.R2),
			asm.LoadImm(asm.R1, format, asm.DWord),
			asm.StoreMem(asm.RFP, fmtOff, asm.R1, asm.DWord),
			asm.Mov.Reg(asm.R1, asm.RFP),
			asm.Add.Imm(asm.R1, fmtOff),
			asm.Mov.Imm(asm.R2, 8),
			asm.FnTracePrintk.Call(),
		)
	}
	insns = append(insns,
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R9, asm.R3),
		asm.Sub.Reg(asm.R9, asm.R2), // bytes
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ethHlen+20),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R5, 0x0008, "pass"), // htons(ETH_P_IP)
		asm.LoadMem(asm.R5, asm.R2, ethHlen+9, asm.Byte),
		asm.JNE.Imm(asm.R5, 17, "pass"), // IPPROTO_UDP
		asm.LoadMem(asm.R5, asm.R2, ethHlen, asm.Byte),
		asm.And.Imm(asm.R5, 0xf),
		asm.LSh.Imm(asm.R5, 2),
		asm.Add.Reg(asm.R2, asm.R5), // data + IHL × 4
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ethHlen+udpHlen),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R7, asm.R2, ethHlen+2, asm.Half),
		asm.HostTo(asm.BE, asm.R7, asm.Half),
		asm.StoreMem(asm.RFP, keyOff, asm.R7, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "insert"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.AddAtomic.Mem(asm.R0, asm.R9, asm.DWord, 8),
		asm.Ja.Label("pass"),
		asm.Mov.Imm(asm.R1, 1).WithSymbol("insert"),
		asm.StoreMem(asm.RFP, valueOff, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, valueOff+8, asm.R9, asm.DWord),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, valueOff),
		asm.Mov.Imm(asm.R4, 1), // BPF_NOEXIST
		asm.FnMapUpdateElem.Call(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
	name := "bench_seed"
	if printk {
		name = "bench_seed_prk"
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.XDP,
		Instructions: insns,
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("loading %s: %w (%+v)", name, err, verr)
		}
		return nil, fmt.Errorf("loading %s: %w", name, err)
	}
	return p, nil
}
