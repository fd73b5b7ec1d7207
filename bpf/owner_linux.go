package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Attachments that outlive their process - XDP attached through netlink
// (Linux < 5.9) and legacy clsact filters - carry no owner the kernel knows
// of. An ownerLock tells a live owner from a dead one: a listening abstract
// Unix socket named after the network namespace, the interface and the
// hook, bound while the attachment is in use. The kernel frees the name
// when the process dies, however it dies; a second bind of a held name
// fails with EADDRINUSE, and connecting to it tells the owner's pid
// (SO_PEERCRED of a listening socket are its creator's).
type ownerLock struct {
	fd   int
	name string
}

// ErrOwnedByLiveProcess means a live process holds the ownership lock of
// an attachment: it is never detached, replaced or adopted.
var ErrOwnedByLiveProcess = errors.New("in use by another running xdp_udp_ports instance")

// OwnerError names the live process that owns an attachment.
type OwnerError struct {
	What string // e.g. "the tc ingress filter of ifindex 3"
	PID  int    // 0 if it could not be read
}

func (e *OwnerError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is %v (pid %d)", e.What, ErrOwnedByLiveProcess, e.PID)
	}
	return fmt.Sprintf("%s is %v", e.What, ErrOwnedByLiveProcess)
}

func (e *OwnerError) Unwrap() error { return ErrOwnedByLiveProcess }

// ownerName is the lock's abstract socket name for an attachment on
// ifindex in the calling thread's network namespace.
func ownerName(ifindex int, hook string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return "", fmt.Errorf("reading the network namespace: %w", err)
	}
	return fmt.Sprintf("@xdp_udp_ports/%d/%d/%s", st.Ino, ifindex, hook), nil
}

// lockOwner takes the ownership lock of the attachment on ifindex at hook
// ("xdp", "tc-ingress", "tc-egress"). If a live process holds it, the
// error is an *OwnerError.
func lockOwner(ifindex int, hook, what string) (*ownerLock, error) {
	name, err := ownerName(ifindex, hook)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ownership lock socket: %w", err)
	}
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: name})
	if errors.Is(err, unix.EADDRINUSE) {
		unix.Close(fd)
		return nil, &OwnerError{What: what, PID: ownerPID(name)}
	}
	if err == nil {
		err = unix.Listen(fd, 8)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ownership lock %s: %w", name, err)
	}
	return &ownerLock{fd: fd, name: name}, nil
}

// ownerPID returns the pid of the process listening on the abstract
// socket name, 0 if it cannot tell.
func ownerPID(name string) int {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		return 0
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0
	}
	return int(cred.Pid)
}

// release frees the lock. It is idempotent.
func (o *ownerLock) release() {
	if o != nil && o.fd >= 0 {
		unix.Close(o.fd)
		o.fd = -1
	}
}

// held is what the attachments that outlive their process - netlink XDP,
// clsact filters - have in common: the program, its ownership lock, and
// the pin that keeps it attached past the process on purpose.
type held struct {
	prog    ebpf.ProgramID
	program *ebpf.Program // owned by the Counters; nil when adopted
	pinned  string        // the program's pin, if pinned: then release leaves it attached
	lock    *ownerLock
}

// hold looks ifindex up, reads prog's id and takes the ownership lock of
// the attachment there at hook; what names it in errors.
func hold(prog *ebpf.Program, ifindex int, hook, what string) (netlink.Link, held, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, held{}, err
	}
	info, err := prog.Info()
	if err != nil {
		return nil, held{}, err
	}
	id, _ := info.ID()
	lock, err := lockOwner(ifindex, hook, fmt.Sprintf(what, l.Attrs().Name))
	if err != nil {
		return nil, held{}, err
	}
	return l, held{prog: id, program: prog, lock: lock}, nil
}

func (h *held) programID() ebpf.ProgramID { return h.prog }

// pin pins the program in dir (an adopted one is pinned already).
func (h *held) pin(dir string) error {
	if h.program == nil {
		return nil
	}
	path := pinPath(dir, pinProg)
	if err := h.program.Pin(path); err != nil {
		return fmt.Errorf("pinning the program: %w", err)
	}
	h.pinned = path
	return nil
}

// release lets go of the lock; remove detaches unless the program is pinned.
func (h *held) release(remove func() error) error {
	defer h.lock.release()
	if h.pinned != "" {
		return nil
	}
	return remove()
}

// detach removes the pin and detaches with remove.
func (h *held) detach(remove func() error) error {
	defer h.lock.release()
	if h.pinned != "" {
		if err := os.Remove(h.pinned); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		h.pinned = ""
	}
	return remove()
}
