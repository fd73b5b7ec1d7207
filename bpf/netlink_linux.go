package bpf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernels before 5.9 cannot attach XDP through a bpf_link. There the
// program is attached through netlink, never replacing another program
// (XDP_FLAGS_UPDATE_IF_NOEXIST). Unlike a bpf_link, such an attachment
// outlives the process: after a SIGKILL it stays until the next start,
// which replaces it only if no live process holds its ownership lock.

// forceNetlinkEnv makes the loader use netlink attachments on any kernel,
// to test that path.
const forceNetlinkEnv = "XDP_UDP_PORTS_NETLINK_ATTACH"

// useNetlink reports whether XDP must be attached through netlink.
func useNetlink() bool {
	if os.Getenv(forceNetlinkEnv) == "1" {
		return true
	}
	return !kernelAtLeast(5, 9)
}

func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return true
	}
	fields := strings.FieldsFunc(unix.ByteSliceToString(u.Release[:]), func(r rune) bool { return r < '0' || r > '9' })
	if len(fields) < 2 {
		return true
	}
	ma, _ := strconv.Atoi(fields[0])
	mi, _ := strconv.Atoi(fields[1])
	return ma > major || (ma == major && mi >= minor)
}

var netlinkModeFlags = map[Mode]int{
	ModeGeneric: unix.XDP_FLAGS_SKB_MODE,
	ModeNative:  unix.XDP_FLAGS_DRV_MODE,
	ModeOffload: unix.XDP_FLAGS_HW_MODE,
}

// netlinkXDP is a program attached through netlink. Its ownership lock
// (owner_linux.go) tells a later instance that it belongs to a live process.
type netlinkXDP struct {
	held
	ifindex int
}

// attachNetlink attaches prog to ifindex through netlink, never over
// another program, after taking the interface's XDP ownership lock. A
// program of ours that is attached there while nobody holds the lock was
// left by an instance that died: it is replaced, and its id returned.
func attachNetlink(prog *ebpf.Program, ifindex int, mode Mode) (*netlinkXDP, ebpf.ProgramID, error) {
	l, h, err := hold(prog, ifindex, "xdp", "the XDP program on %s")
	if err != nil {
		return nil, 0, err
	}
	var replaced ebpf.ProgramID
	if x := l.Attrs().Xdp; x != nil && x.Attached && OwnProgramName(programName(ebpf.ProgramID(x.ProgId))) {
		if err := detachNetlink(ifindex, ebpf.ProgramID(x.ProgId)); err != nil {
			h.lock.release()
			return nil, 0, fmt.Errorf("replacing program id %d left attached by an instance that died: %w", x.ProgId, err)
		}
		replaced = ebpf.ProgramID(x.ProgId)
	}
	if err := netlink.LinkSetXdpFdWithFlags(l, prog.FD(), unix.XDP_FLAGS_UPDATE_IF_NOEXIST|netlinkModeFlags[mode]); err != nil {
		h.lock.release()
		return nil, 0, fmt.Errorf("netlink XDP attach: %w", err)
	}
	return &netlinkXDP{held: h, ifindex: ifindex}, replaced, nil
}

// check compares the interface's XDP program with ours.
func (n *netlinkXDP) check(a *Attachment) error {
	if xdpProgram(n.ifindex) == n.prog {
		return nil
	}
	return &DetachedError{Hook: a.Hook, Dir: a.Dir, Prog: n.prog, Now: occupants(a)}
}

func (n *netlinkXDP) remove() error  { return detachNetlink(n.ifindex, n.prog) }
func (n *netlinkXDP) release() error { return n.held.release(n.remove) }
func (n *netlinkXDP) detach() error  { return n.held.detach(n.remove) }

// xdpProgram returns the id of the XDP program attached to ifindex, 0 if
// none (or the interface is gone).
func xdpProgram(ifindex int) ebpf.ProgramID {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return 0
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return ebpf.ProgramID(x.ProgId)
	}
	return 0
}

// IFLA_XDP_ATTACHED values to the flags that detach in that mode, and to
// the hook they are.
var (
	attachedModeFlags = map[uint32]int{1: unix.XDP_FLAGS_DRV_MODE, 2: unix.XDP_FLAGS_SKB_MODE, 3: unix.XDP_FLAGS_HW_MODE}
	attachedHooks     = map[uint32]Hook{1: HookXDPNative, 2: HookXDPGeneric, 3: HookXDPOffload}
)

// xdpHookOf returns the hook prog is attached at on ifindex, HookNone if
// it is not the interface's XDP program.
func xdpHookOf(ifindex int, prog ebpf.ProgramID) Hook {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return HookNone
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached && ebpf.ProgramID(x.ProgId) == prog {
		return attachedHooks[x.AttachMode]
	}
	return HookNone
}

// detachNetlink detaches prog from the interface if it is attached there.
func detachNetlink(ifindex int, prog ebpf.ProgramID) error {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil // the interface is gone, and the program with it
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached || x.ProgId != uint32(prog) {
		return nil // not ours (any more)
	}
	if err := netlink.LinkSetXdpFdWithFlags(l, -1, attachedModeFlags[x.AttachMode]); err != nil {
		return fmt.Errorf("netlink XDP detach: %w", err)
	}
	return nil
}

// OwnProgramName reports whether name is one of this program's names.
func OwnProgramName(name string) bool {
	for _, n := range programNames {
		if name == n {
			return true
		}
	}
	return false
}

// detachEverywhere detaches prog from every interface (of the calling
// thread's network namespace) it is attached to through netlink.
func detachEverywhere(prog ebpf.ProgramID) error {
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if x := l.Attrs().Xdp; x != nil && x.Attached && x.ProgId == uint32(prog) {
			errs = append(errs, detachNetlink(l.Attrs().Index, prog))
		}
	}
	return errors.Join(errs...)
}
