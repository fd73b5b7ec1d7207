package main

import (
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/influxdata/telegraf"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

// Least privilege (README "Running without root"): the binary runs as an
// unprivileged user holding only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON,
// given either as ambient capabilities (what systemd's AmbientCapabilities
// does) or as file capabilities on the binary (setcap); without one of
// them it exits at once naming what is missing.

// nobody is the unprivileged uid and gid the binary runs as.
const nobody = "65534"

// setpriv's names for the capabilities.
var capNames = map[int]string{
	testproc.CapNetAdmin: "net_admin", testproc.CapSysAdmin: "sys_admin", testproc.CapPerfmon: "perfmon", testproc.CapBPF: "bpf",
}

// neededCaps are the capabilities the README documents.
var neededCaps = []int{testproc.CapBPF, testproc.CapNetAdmin, testproc.CapPerfmon}

// setprivArgs runs a command as nobody (no supplementary groups) whose
// capabilities are exactly caps: inheritable, ambient and bounding sets are
// set to caps, so the exec'd binary gets them as permitted and effective.
// With caps empty it has none at all, file capabilities included.
func setprivArgs(caps []int) []string {
	set := "-all"
	for _, c := range caps {
		set += ",+" + capNames[c]
	}
	return []string{"--reuid=" + nobody, "--regid=" + nobody, "--clear-groups",
		"--inh-caps=" + set, "--ambient-caps=" + set, "--bounding-set=" + set}
}

// copyFile copies src to dst with mode perm (not subject to the umask).
func copyFile(t *testing.T, src, dst string, perm os.FileMode) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, perm); err != nil {
		t.Fatal(err)
	}
	return dst
}

// setFileCaps does what `setcap cap_...+ep path` does, without needing
// libcap's setcap: it writes a version 2 security.capability attribute
// with caps permitted and the effective bit set.
func setFileCaps(t *testing.T, path string, caps []int) {
	t.Helper()
	const vfsCapRevision2, vfsCapFlagsEffective = 0x02000000, 0x1
	m := testproc.CapMask(caps...)
	var attr [20]byte // magic_etc, then {permitted, inheritable} for caps 0-31 and 32-63
	binary.LittleEndian.PutUint32(attr[0:], vfsCapRevision2|vfsCapFlagsEffective)
	binary.LittleEndian.PutUint32(attr[4:], uint32(m))
	binary.LittleEndian.PutUint32(attr[12:], uint32(m>>32))
	if err := unix.Setxattr(path, "security.capability", attr[:], 0); err != nil {
		t.Fatalf("setting file capabilities on %s: %v", path, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&unix.ST_NOSUID != 0 {
		testnet.SkipOrFail(t, "%s is on a nosuid mount, where file capabilities are ignored; set TMPDIR elsewhere", path)
	}
}

// missingCaps returns the list the binary names in "missing capabilities
// CAP_A, CAP_B; hint", or "" if stderr has no such error.
func missingCaps(stderr string) string {
	_, rest, ok := strings.Cut(stderr, "missing capabilities ")
	if !ok {
		return ""
	}
	list, _, _ := strings.Cut(rest, ";")
	return list
}

func TestBinaryUnprivileged(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if _, err := exec.LookPath("setpriv"); err != nil {
		testnet.SkipOrFail(t, "needs util-linux's setpriv: %v", err)
	}
	dir := testproc.PublicDir(t)
	bin := copyFile(t, binPath, filepath.Join(dir, "xdp_udp_ports"), 0o755)
	cfg := copyFile(t, pluginConfig(t, p.ReceiverIf), filepath.Join(dir, "plugin.conf"), 0o644)
	run := func(t *testing.T, setpriv []string, bin string) *testproc.Proc {
		args := slices.Concat(setpriv, []string{bin, "-config", cfg, "-poll_interval", "100ms"})
		return startProc(t, testnet.Command(p.Receiver, "setpriv", args...))
	}

	// counts runs the binary as nobody and checks that it holds exactly
	// wantCaps, attaches, counts exactly and detaches when stdin closes.
	counts := func(t *testing.T, setpriv []string, bin string, wantCaps []int) {
		pr := run(t, setpriv, bin)
		pr.WaitFor(t, 5*time.Second, func(m telegraf.Metric) bool { return m.Name() == "xdp_udp_ports_interface" })
		if c := testproc.ReadCreds(t, pr.Cmd.Process.Pid); c.UID != nobody || c.CapEff != testproc.CapMask(wantCaps...) {
			t.Fatalf("binary runs as uid %s with CapEff %#x, want uid %s with %#x", c.UID, c.CapEff, nobody, testproc.CapMask(wantCaps...))
		}
		p.MustSend(t,
			testnet.Datagrams{Dst: p.ReceiverV4, Port: 5353, Count: 7, Payload: 30},
			testnet.Datagrams{Dst: p.ReceiverV6, Port: 5353, Count: 4, Payload: 30},
		)
		m := pr.WaitFor(t, 5*time.Second, portIs("5353", 11))
		wantBytes := int64(7*testnet.FrameLen(p.ReceiverV4, 30) + 4*testnet.FrameLen(p.ReceiverV6, 30))
		if b, _ := m.GetField("bytes"); b != wantBytes {
			t.Errorf("port 5353 bytes %v, want %d", b, wantBytes)
		}
		pr.Stdin.Close()
		if code := pr.Exit(t, 2*time.Second); code != 0 {
			t.Fatalf("exit code %d after stdin closed; stderr:\n%s", code, pr.Stderr)
		}
		testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
	}

	t.Run("ambient", func(t *testing.T) {
		counts(t, setprivArgs(neededCaps), bin, neededCaps)
	})
	t.Run("setcap", func(t *testing.T) {
		capped := copyFile(t, bin, filepath.Join(dir, "xdp_udp_ports-setcap"), 0o755)
		setFileCaps(t, capped, neededCaps)
		// No capabilities of its own, full bounding set: only the file's.
		counts(t, []string{"--reuid=" + nobody, "--regid=" + nobody, "--clear-groups", "--inh-caps=-all", "--ambient-caps=-all"},
			capped, neededCaps)
	})
	// The kernel lets CAP_SYS_ADMIN stand for CAP_BPF and CAP_PERFMON.
	t.Run("sys_admin", func(t *testing.T) {
		caps := []int{testproc.CapSysAdmin, testproc.CapNetAdmin}
		counts(t, setprivArgs(caps), bin, caps)
	})

	for _, tc := range []struct {
		name    string
		caps    []int
		missing string
	}{
		{"without_CAP_BPF", []int{testproc.CapNetAdmin, testproc.CapPerfmon}, "CAP_BPF"},
		{"without_CAP_NET_ADMIN", []int{testproc.CapBPF, testproc.CapPerfmon}, "CAP_NET_ADMIN"},
		{"without_CAP_PERFMON", []int{testproc.CapBPF, testproc.CapNetAdmin}, "CAP_PERFMON"},
		{"without_any", nil, "CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := run(t, setprivArgs(tc.caps), bin)
			code := pr.Exit(t, 5*time.Second)
			stderr := pr.Stderr.String()
			if code != 1 || missingCaps(stderr) != tc.missing {
				t.Fatalf("exit code %d, missing capabilities %q; want exit 1 naming exactly %q; stderr:\n%s",
					code, missingCaps(stderr), tc.missing, stderr)
			}
			if !strings.Contains(stderr, "AmbientCapabilities") || !strings.Contains(stderr, "setcap") {
				t.Errorf("the error has no hint (AmbientCapabilities, setcap):\n%s", stderr)
			}
			testnet.RequireNoneOurs(t, p.Receiver, p.ReceiverIf)
		})
	}
}
