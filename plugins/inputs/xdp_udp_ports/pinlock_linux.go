//go:build linux

package xdp_udp_ports

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A pin_path directory has one owner at a time: the instance that uses it
// holds flock on it (the directory itself: bpffs takes no regular files,
// and pin_path is never removed while in use, unlike the interfaces'
// directories in it) for as long as it runs. Another instance - a second
// Telegraf, `telegraf --test`, `xdp_udp_ports unpin` - finds it locked and
// touches nothing there. The kernel releases the lock when the owner dies,
// however it dies; the next instance then adopts what is pinned.

// ErrPinPathInUse means another live process holds pin_path.
var ErrPinPathInUse = errors.New("in use by another running instance")

// PinPathInUseError names the pin directory and its owner.
type PinPathInUseError struct {
	Dir string
	PID int // 0 if /proc/locks does not tell
}

func (e *PinPathInUseError) Error() string {
	owner := "another running xdp_udp_ports instance"
	if e.PID > 0 {
		owner += fmt.Sprintf(" (pid %d)", e.PID)
	}
	return fmt.Sprintf("pin_path: %s is in use by %s; its programs and pins are left alone: stop it first, or give this configuration a pin_path of its own", e.Dir, owner)
}

func (e *PinPathInUseError) Unwrap() error { return ErrPinPathInUse }

// LockPinPath creates pin_path if needed (mode 0700) and takes its lock;
// a *PinPathInUseError if another process holds it. Close releases it.
func LockPinPath(dir string) (io.Closer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pin_path: creating %s: %w", dir, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("pin_path: %w", err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		pid := lockHolder(f)
		f.Close()
		return nil, &PinPathInUseError{Dir: dir, PID: pid}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pin_path: locking %s: %w", dir, err)
	}
	return f, nil
}

// lockHolder returns the pid that holds a flock on f's inode, from
// /proc/locks; 0 if it cannot tell.
func lockHolder(f *os.File) int {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer locks.Close()
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		// 1: FLOCK  ADVISORY  WRITE 4242 00:2d:1234 0 EOF
		fields := strings.Fields(sc.Text())
		if len(fields) >= 6 && fields[1] == "FLOCK" && fields[5] == want {
			if pid, err := strconv.Atoi(fields[4]); err == nil {
				return pid
			}
		}
	}
	return 0
}
