package bpf

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// The committed objects and bindings are what `make generate` makes from
// xdp_udp_ports.c: the go:generate line of gen.go runs again, with the
// Makefile's flags, into a scratch directory, and every output must be
// identical.
func TestGeneratedFilesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, tool := range []string{"clang", "llvm-strip"} {
		if _, err := exec.LookPath(tool); err != nil {
			testnet.SkipOrFail(t, "%s not installed (make deps-generate): %v", tool, err)
		}
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		testnet.SkipOrFail(t, "libbpf-dev not installed (make deps-generate): %v", err)
	}
	args := generateArgs(t) // bpf2go [flags] ident source
	dir := t.TempDir()
	args = append([]string{args[0], "-output-dir", dir}, args[1:]...)
	cmd := exec.Command("go", append([]string{"tool"}, args...)...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf", "GOFILE=gen.go", "BPF2GO_CFLAGS="+makeCFlags(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	outs, _ := filepath.Glob(filepath.Join(dir, "xdpudpports_*"))
	if len(outs) != 4 {
		t.Fatalf("bpf2go wrote %v, want 4 files", outs)
	}
	for _, out := range outs {
		got, _ := os.ReadFile(out)
		want, err := os.ReadFile(filepath.Base(out))
		if err != nil {
			t.Errorf("%s is generated but not committed", filepath.Base(out))
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what xdp_udp_ports.c compiles to: run make generate and commit", filepath.Base(out))
		}
	}
}

// generateArgs reads the bpf2go command from gen.go's go:generate line.
func generateArgs(t *testing.T) []string {
	f, err := os.Open("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "//go:generate go tool "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("no //go:generate go tool line in gen.go")
	return nil
}

// makeCFlags returns BPF2GO_CFLAGS as the Makefile sets it.
func makeCFlags(t *testing.T) string {
	out, err := exec.Command("make", "-s", "-C", "..", "print-cflags").Output()
	if err != nil {
		t.Fatalf("make print-cflags: %v", err)
	}
	return strings.TrimSpace(string(out))
}
