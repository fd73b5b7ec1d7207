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
// outlives the process: after a SIGKILL it stays until the next start
// replaces it (ReplaceStale).

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

// netlinkAttachment is a program attached through netlink.
type netlinkAttachment struct {
	ifindex int
	prog    ebpf.ProgramID
	program *ebpf.Program // owned by the Counters; nil when adopted
	pinned  string        // the program's pin, if pinned: then Close leaves it attached
}

func attachNetlink(prog *ebpf.Program, ifindex int, mode Mode) (*netlinkAttachment, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, err
	}
	info, err := prog.Info()
	if err != nil {
		return nil, err
	}
	id, _ := info.ID()
	if err := netlink.LinkSetXdpFdWithFlags(l, prog.FD(), unix.XDP_FLAGS_UPDATE_IF_NOEXIST|netlinkModeFlags[mode]); err != nil {
		return nil, fmt.Errorf("netlink XDP attach: %w", err)
	}
	return &netlinkAttachment{ifindex: ifindex, prog: id, program: prog}, nil
}

// detach removes the program if it is still the one attached.
func (n *netlinkAttachment) detach() error {
	if n.pinned != "" {
		if err := os.Remove(n.pinned); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		n.pinned = ""
	}
	return detachNetlink(n.ifindex, n.prog)
}

// IFLA_XDP_ATTACHED values to the flags that detach in that mode.
var attachedModeFlags = map[uint32]int{1: unix.XDP_FLAGS_DRV_MODE, 2: unix.XDP_FLAGS_SKB_MODE, 3: unix.XDP_FLAGS_HW_MODE}

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
	return name == programNames[Plain] || name == programNames[Frags]
}

// ReplaceStale detaches a program of ours that a crashed earlier run left
// attached through netlink (kernels without XDP bpf_link). It does nothing
// where attachments are bpf_links: those die with their process, so a
// program of ours there belongs to another running instance.
func (l *Loader) ReplaceStale(ifindex int, prog ebpf.ProgramID, name string) (bool, error) {
	if !l.netlink || !OwnProgramName(name) {
		return false, nil
	}
	return true, detachNetlink(ifindex, prog)
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
