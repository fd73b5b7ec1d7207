//go:build linux

package testnet

import (
	"fmt"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TUN is a TUN device (IFF_TUN | IFF_NO_PI: no link-layer header, ARPHRD_NONE,
// as wireguard-go's) in a namespace, with the test holding its file: what
// is written to File arrives at the interface (ingress), what the
// namespace sends through it can be read from File (egress).
type TUN struct {
	Name string
	File *os.File
}

// NewTUN creates a TUN device named name in namespace ns, up, with the
// given addresses (CIDR; IPv6 with nodad), and removes it at cleanup.
func NewTUN(t testing.TB, ns, name string, addrs ...string) *TUN {
	t.Helper()
	return NewTUNType(t, ns, name, 0, addrs...)
}

// NewTUNType is NewTUN with the device's link type set to arphrd
// (TUNSETLINK; 0 keeps ARPHRD_NONE): a way to make links of other types
// (ARPHRD_PPP, ...) on kernels without their drivers.
func NewTUNType(t testing.TB, ns, name string, arphrd int, addrs ...string) *TUN {
	t.Helper()
	var f *os.File
	err := Do(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening /dev/net/tun: %w", err)
		}
		var req struct {
			name  [unix.IFNAMSIZ]byte
			flags uint16
			_     [22]byte
		}
		copy(req.name[:], name)
		req.flags = unix.IFF_TUN | unix.IFF_NO_PI
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); errno != 0 {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s: %w", name, errno)
		}
		if arphrd != 0 {
			if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETLINK, uintptr(arphrd)); errno != 0 {
				unix.Close(fd)
				return fmt.Errorf("TUNSETLINK %s %d: %w", name, arphrd, errno)
			}
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // the device goes with its last file
	for _, a := range addrs {
		args := []string{"-n", ns, "addr", "add", a, "dev", name}
		if len(a) > 0 && containsColon(a) {
			args = append(args, "nodad")
		}
		MustIP(t, args...)
	}
	MustIP(t, "-n", ns, "link", "set", name, "up")
	return &TUN{Name: name, File: f}
}

func containsColon(s string) bool {
	for _, c := range s {
		if c == ':' {
			return true
		}
	}
	return false
}
