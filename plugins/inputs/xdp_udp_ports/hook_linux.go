//go:build linux

package xdp_udp_ports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// nativeXDPDrivers are the NIC drivers on which ingress_hook = "auto"
// uses native XDP: their XDP runs in the driver before the kernel builds
// a packet, and keeps receive offloads - GRO runs after XDP_PASS as
// without a program, checksum offload and RSS stay. Everywhere else auto
// uses TC: on a veth native XDP gives up GRO/GSO pass-through (TCP
// between containers loses two thirds of its throughput), on virtio_net
// attaching XDP clears the guest offloads, and virtual devices (lo,
// bridges, bonds, vxlan, TUN/TAP) only have generic XDP, which sees
// packets after the kernel built them anyway, as TC does.
var nativeXDPDrivers = map[string]bool{
	"mlx5_core": true, // NVIDIA/Mellanox ConnectX-4 and later
	"mlx4_en":   true, // Mellanox ConnectX-3
	"ice":       true, // Intel E800
	"i40e":      true, // Intel 700
	"ixgbe":     true, // Intel 82599/X5xx
	"igc":       true, // Intel I225/I226
	"bnxt_en":   true, // Broadcom NetXtreme-C/E
	"nfp":       true, // Netronome Agilio
	"sfc":       true, // AMD/Solarflare
	"qede":      true, // Marvell/QLogic FastLinQ
}

// driverOf returns the driver of a network device from sysfs
// (<root>/class/net/<name>/device/driver), "" for virtual devices.
func driverOf(sysfsRoot, name string) string {
	target, err := os.Readlink(filepath.Join(sysfsRoot, "class", "net", name, "device", "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// target says where a counting is attached: egress always at TC; ingress
// at XDP or TC as ingress_hook says, "auto" choosing per interface. ours
// is a program of ours already attached there (adopted), not a foreign one.
func (p *XDPUDPPorts) target(it *iface, c *counting, a *netlink.LinkAttrs, ours ebpf.ProgramID) (bpf.Target, error) {
	t := bpf.Target{Ifindex: a.Index, Dir: c.dir, Mode: p.settings.mode}
	if c.dir == bpf.Egress {
		return t, nil
	}
	foreign := foreignXDP(a, ours)
	switch p.settings.ingressHook {
	case hookTC:
		return t, nil
	case hookXDP:
		if foreign != 0 {
			ref := bpf.ProgramRefOf(foreign)
			// Over our own program on the netlink path, bpf's ownership
			// lock tells a live owner from a dead one.
			if !p.loader.NetlinkAttach() || !bpf.OwnProgramName(ref.Name) {
				return t, foreignProgram(a.Name, ref)
			}
		}
		t.XDP = true
		return t, nil
	}
	switch driver := driverOf(p.sysfsRoot(), a.Name); {
	case foreign != 0:
		p.choose(it, c, fmt.Sprintf("another XDP program (%s) is attached: using TC, which counts what that program passes", bpf.ProgramRefOf(foreign)))
	case driver == "":
		p.choose(it, c, "a virtual interface (veth, lo, bridge, bond, vxlan, TUN/TAP...): using TC; native XDP here would cost throughput or run as generic XDP")
	case driver == "virtio_net":
		p.choose(it, c, "driver virtio_net: using TC; attaching XDP would clear the guest's receive offloads")
	case !nativeXDPDrivers[driver]:
		p.choose(it, c, fmt.Sprintf("driver %s is not one known to run native XDP without giving up receive offloads: using TC", driver))
	default:
		p.choose(it, c, fmt.Sprintf("driver %s runs native XDP with its receive offloads: using native XDP", driver))
		t.XDP, t.Mode = true, bpf.ModeNative
	}
	return t, nil
}

// foreignXDP returns the id of an XDP program attached to a other than
// ours, 0 if none.
func foreignXDP(a *netlink.LinkAttrs, ours ebpf.ProgramID) ebpf.ProgramID {
	if x := a.Xdp; x != nil && x.Attached && x.ProgId != 0 && ebpf.ProgramID(x.ProgId) != ours {
		return ebpf.ProgramID(x.ProgId)
	}
	return 0
}

// choose logs why ingress_hook = "auto" picked a hook, once per interface
// and reason.
func (p *XDPUDPPorts) choose(it *iface, c *counting, why string) {
	if c.choice != why {
		c.choice = why
		p.Log.Infof(`interface %s: ingress_hook = "auto": %s`, it.name, why)
	}
}

func (p *XDPUDPPorts) sysfsRoot() string {
	if p.sysfs != "" {
		return p.sysfs
	}
	return "/sys"
}

// wantsHook reports whether an attachment found at hook (adopted from
// pins) is where the configuration would attach now.
func (p *XDPUDPPorts) wantsHook(it *iface, c *counting, a *netlink.LinkAttrs, att *bpf.Attachment) bool {
	t, err := p.target(it, c, a, att.ProgramID())
	if err != nil {
		return false
	}
	if !t.XDP {
		return !att.Hook.IsXDP()
	}
	if t.Mode == bpf.ModeAuto { // native, falling back to generic
		return att.Hook == bpf.HookXDPNative || att.Hook == bpf.HookXDPGeneric
	}
	return att.Hook == t.Mode.Hook()
}

// foreignProgram describes another XDP program found on an interface.
func foreignProgram(ifname string, ref bpf.ProgramRef) error {
	msg := fmt.Sprintf(`interface %s: another XDP program (%s) is attached; xdp_udp_ports never replaces or detaches it (it will retry at every resync; ingress_hook = "tc" or "auto" counts alongside it at TC)`, ifname, ref)
	if bpf.OwnProgramName(ref.Name) {
		msg += "; it looks like xdp_udp_ports run by another process, or left pinned by a run with pin_path (xdp_udp_ports unpin removes it)"
	}
	return errors.New(msg)
}
