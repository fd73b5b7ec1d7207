//go:build linux

package xdp_udp_ports

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// kernelMemory is the estimated kernel memory of every loaded instance.
// Called with p.mu held.
func (p *XDPUDPPorts) kernelMemory() uint64 {
	var sum uint64
	for _, it := range p.ifaces {
		for _, c := range it.dirs {
			sum += c.memory
		}
	}
	return sum
}

// makeRoom checks that one more instance with layout l (the counters of
// interface name in direction d) fits within max_kernel_memory. If not,
// it frees the counters of interfaces that are gone, longest gone first;
// if that is not enough, it refuses. Called with p.mu held.
func (p *XDPUDPPorts) makeRoom(name string, d bpf.Direction, l bpf.Layout) error {
	need, used := l.KernelMemory(), p.kernelMemory()
	for used+need > p.settings.maxMemory {
		var victim *iface
		for _, it := range p.ifaces {
			if !it.absent.IsZero() && (victim == nil || it.absent.Before(victim.absent)) {
				victim = it
			}
		}
		if victim == nil {
			return fmt.Errorf("interface %s: %s: not attached: its maps would need %s of kernel memory "+
				"(%d CPUs x %d slots x 16 B + 128 KiB) and %s is in use, above max_kernel_memory = %s; "+
				"set a ports allow-list to shrink the table to the listed ports, or raise max_kernel_memory",
				name, d, formatBytes(need), l.CPUs, l.SlotsPerCPU, formatBytes(used), formatBytes(p.settings.maxMemory))
		}
		p.Log.Infof("freeing the counters of %s (gone since %s) to make room for %s within max_kernel_memory",
			victim.name, victim.absent.Format("15:04:05"), name)
		for _, c := range victim.dirs {
			used -= c.memory
		}
		p.forget(victim)
	}
	return nil
}

// checkMemory refuses at Init a max_kernel_memory too small for even one
// interface in every configured direction.
func checkMemory(s *settings) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil // Start will tell
	}
	l, err := bpf.NewLayout(bpf.Config{CountSource: s.source, Ports: s.ports}, cpus)
	if err != nil {
		return err
	}
	need := l.KernelMemory() * uint64(len(s.directions))
	if need <= s.maxMemory {
		return nil
	}
	return fmt.Errorf("max_kernel_memory: %s is too small for even one interface: its maps need %s "+
		"(%d directions x (%d CPUs x %d slots x 16 B + 128 KiB)); set a ports allow-list to shrink them, or raise max_kernel_memory",
		formatBytes(s.maxMemory), formatBytes(need), len(s.directions), l.CPUs, l.SlotsPerCPU)
}

// formatBytes renders n in binary units, e.g. "2.0 MiB".
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
