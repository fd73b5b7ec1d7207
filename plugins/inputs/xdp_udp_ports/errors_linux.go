//go:build linux

package xdp_udp_ports

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

const capsHint = "xdp_udp_ports needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (or root): " +
	"with systemd set AmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_PERFMON, " +
	"or run setcap cap_bpf,cap_net_admin,cap_perfmon+ep on the binary"

// hint returns "; hint: ..." for errors a user can act on, else "".
func hint(err error, hook bpf.Hook) string {
	var h string
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		h = capsHint
	case errors.Is(err, bpf.ErrOwnedByLiveProcess):
		h = "another xdp_udp_ports (another Telegraf, or xdp_udp_ports top) counts there; xdp_udp_ports never takes over a live instance's attachment"
	case hook == bpf.HookXDPOffload && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)):
		h = `this interface cannot offload XDP programs (only a few SmartNICs can, and not with this program's per-CPU counters); use xdp_mode = "native" or "auto"`
	case hook.IsXDP() && errors.Is(err, unix.EOPNOTSUPP):
		h = `the driver has no native XDP support; use xdp_mode = "generic" or "auto", or ingress_hook = "tc"`
	case hook.IsXDP() && (errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST)):
		h = `another XDP program is attached to this interface (ip link show shows it); xdp_udp_ports never replaces it; ingress_hook = "tc" counts alongside it`
	case errors.Is(err, unix.ERANGE):
		h = `the MTU is too large for a single-buffer XDP program and this kernel has no multi-buffer XDP (Linux 5.18+); lower the MTU or use xdp_mode = "generic"`
	case errors.Is(err, unix.ENOMEM), errors.Is(err, unix.E2BIG):
		h = "the kernel could not allocate the counter maps; set a ports allow-list to shrink them"
	}
	if h == "" {
		return ""
	}
	return "; hint: " + h
}

// errnoName returns the errno's symbolic name, e.g. "EOPNOTSUPP".
func errnoName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
		return "errno " + strconv.Itoa(int(errno))
	}
	return ""
}

// attachError names the interface, the direction and hook(s), the errno
// and a hint.
func attachError(name string, err error) error {
	msg := fmt.Sprintf("interface %s: %v", name, err)
	if e := errnoName(err); e != "" {
		msg += " (" + e + ")"
	}
	return errors.New(msg + hint(err, hookOf(err, bpf.HookNone)))
}

// Capability numbers (linux/capability.h).
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// checkCapabilities names the capabilities the process lacks.
func checkCapabilities() error {
	eff, err := effectiveCaps()
	if err != nil {
		return nil // cannot tell; the kernel will say EPERM if so
	}
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	var missing []string
	if !has(capBPF) && !has(capSysAdmin) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if !has(capPerfmon) && !has(capSysAdmin) {
		missing = append(missing, "CAP_PERFMON")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing capabilities %s; %s", strings.Join(missing, ", "), capsHint)
}

func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

// checkPinPath checks that pin_path is (or would be created) on a bpffs.
func checkPinPath(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("pin_path: %q is not an absolute path", path)
	}
	dir := path
	for {
		var st unix.Statfs_t
		err := unix.Statfs(dir, &st)
		if err == nil {
			if st.Type != unix.BPF_FS_MAGIC {
				return fmt.Errorf("pin_path: %q is not on a bpffs mount; mount one first: mount -t bpf bpf /sys/fs/bpf", path)
			}
			return nil
		}
		if !errors.Is(err, unix.ENOENT) || dir == "/" {
			return fmt.Errorf("pin_path: %q: %w", path, err)
		}
		dir = filepath.Dir(dir)
	}
}
