//go:build package

package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/plugins/inputs/execd"
	_ "github.com/influxdata/telegraf/plugins/parsers/influx" // data_format = "influx"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

// The layout both packages install (README "Install").
const (
	pkgName     = "xdp-udp-ports"
	binFile     = "/usr/bin/xdp_udp_ports"
	confDir     = "/etc/xdp_udp_ports"
	confFile    = confDir + "/xdp_udp_ports.conf"
	docDir      = "/usr/share/doc/xdp-udp-ports"
	snippetFile = docDir + "/xdp_udp_ports.telegraf.conf"
	manPage     = "/usr/share/man/man1/xdp_udp_ports.1.gz"
	overrides   = "/usr/share/lintian/overrides/" + pkgName
)

// pkgFiles are the files (not directories) both packages install; the
// .deb also has the lintian overrides.
var pkgFiles = []string{
	confFile,
	binFile,
	docDir + "/README.md",
	docDir + "/changelog.gz",
	docDir + "/copyright",
	snippetFile,
	manPage,
}

// wantCaps are the file capabilities of the installed binary, sorted, and
// wantCapMask the effective set it runs with.
var (
	wantCaps    = []string{"cap_bpf", "cap_net_admin", "cap_perfmon"}
	wantCapMask = testproc.CapMask(testproc.CapBPF, testproc.CapNetAdmin, testproc.CapPerfmon)
)

// repoRoot is the top of the repository (go test runs in packaging/).
const repoRoot = ".."

// pkgFile returns the one package in $XDP_UDP_PORTS_PKG_DIR (set by
// `make package-test`) whose name matches pattern.
func pkgFile(t *testing.T, pattern string) string {
	t.Helper()
	dir := os.Getenv("XDP_UDP_PORTS_PKG_DIR")
	if dir == "" {
		testnet.SkipOrFail(t, "XDP_UDP_PORTS_PKG_DIR is not set: run `make package-test`")
	}
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) != 1 {
		t.Fatalf("want exactly one %s in %s (make package), found %v %v", pattern, dir, m, err)
	}
	return m[0]
}

// requireTools makes sure the commands exist; with CI=true a missing one
// fails the test.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			testnet.SkipOrFail(t, "needs %s: %v", name, err)
		}
	}
}

// run runs a command with no stdin and returns its combined output,
// failing the test when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	return cmd
}

// loadSnippet loads an execd snippet with Telegraf's own config loader
// and checks what it must say besides its command, which it returns.
func loadSnippet(t *testing.T, data []byte) []string {
	t.Helper()
	c := config.NewConfig()
	if err := c.LoadConfigData(data, config.EmptySourcePath); err != nil {
		t.Fatalf("Telegraf does not load the execd snippet: %v\n%s", err, data)
	}
	if len(c.Inputs) != 1 || len(c.Outputs) != 0 {
		t.Fatalf("the snippet has %d inputs and %d outputs, want one [[inputs.execd]]", len(c.Inputs), len(c.Outputs))
	}
	e, ok := c.Inputs[0].Input.(*execd.Execd)
	if !ok {
		t.Fatalf("the snippet's input is %T, want inputs.execd", c.Inputs[0].Input)
	}
	if e.Signal != "STDIN" || time.Duration(e.RestartDelay) != 10*time.Second {
		t.Errorf("snippet: signal %q, restart_delay %s; want \"STDIN\", 10s", e.Signal, time.Duration(e.RestartDelay))
	}
	// The parser is not exported by execd: check the line itself.
	if !bytes.Contains(data, []byte("\n  data_format = \"influx\"\n")) {
		t.Errorf("snippet has no data_format = \"influx\":\n%s", data)
	}
	return e.Command
}

// checkSnippetCommand checks the snippet runs bin with the installed
// config, gathering when Telegraf writes to its stdin.
func checkSnippetCommand(t *testing.T, cmd []string, bin string) {
	t.Helper()
	if want := []string{bin, "-config", confFile, "-poll_interval_disabled"}; !slices.Equal(cmd, want) {
		t.Errorf("snippet command %q, want %q", cmd, want)
	}
}

// checkOwner checks path's owner, group and permission bits.
func checkOwner(t *testing.T, path string, uid, gid uint32, perm os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != perm {
		t.Errorf("%s is %d:%d %#o, want %d:%d %#o", path, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid, perm)
	}
}

// fileCaps returns the names of the file capabilities getcap shows on
// path (sorted) and their flags ("ep"), or nothing if it has none.
func fileCaps(t *testing.T, path string) (names []string, flags string) {
	t.Helper()
	out := strings.TrimSpace(run(t, "getcap", path))
	if out == "" {
		return nil, ""
	}
	// "path cap_a,cap_b=ep" (libcap 2.4x) or "path = cap_a,cap_b+ep".
	rest, ok := strings.CutPrefix(out, path)
	if !ok {
		t.Fatalf("getcap %s: unexpected output %q", path, out)
	}
	rest = strings.TrimPrefix(strings.TrimSpace(rest), "= ")
	i := strings.LastIndexAny(rest, "=+")
	if i < 0 {
		t.Fatalf("getcap %s: unexpected output %q", path, out)
	}
	names = strings.Split(rest[:i], ",")
	slices.Sort(names)
	return names, rest[i+1:]
}

// requireGone fails for every path that exists.
func requireGone(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
}
