//go:build linux

package xdp_udp_ports

import (
	"fmt"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// kernelMemory is the estimated kernel memory of every loaded instance.
// Called with p.mu held.
func (p *XDPUDPPorts) kernelMemory() uint64 {
	var sum uint64
	for _, it := range p.ifaces {
		sum += it.memory
	}
	return sum
}

// makeRoom checks that one more instance with layout l fits within
// max_kernel_memory. If not, it frees the counters of interfaces that are
// gone, longest gone first; if that is not enough, it refuses. Called with
// p.mu held.
func (p *XDPUDPPorts) makeRoom(name string, l bpf.Layout) error {
	need, used := l.KernelMemory(), p.kernelMemory()
	for used+need > p.settings.maxMemory {
		var victim *iface
		for _, it := range p.ifaces {
			if it.counters != nil && !it.absent.IsZero() && (victim == nil || it.absent.Before(victim.absent)) {
				victim = it
			}
		}
		if victim == nil {
			return fmt.Errorf("interface %s: not attached: its maps would need %s of kernel memory "+
				"(%d CPUs x %d slots x 16 B + 128 KiB) and %s is in use, above max_kernel_memory = %s; "+
				"set a ports allow-list to shrink the table to the listed ports, or raise max_kernel_memory",
				name, formatBytes(need), l.CPUs, l.SlotsPerCPU, formatBytes(used), formatBytes(p.settings.maxMemory))
		}
		p.Log.Infof("freeing the counters of %s (gone since %s) to make room for %s within max_kernel_memory",
			victim.name, victim.absent.Format("15:04:05"), name)
		used -= victim.memory
		if err := victim.counters.Close(); err != nil {
			p.Log.Warnf("freeing the maps of %s: %v", victim.name, err)
		}
		delete(p.ifaces, victim.name)
	}
	return nil
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
