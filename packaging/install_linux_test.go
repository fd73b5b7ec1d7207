//go:build package

package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeInstall runs `make install` into a DESTDIR: the layout of the
// README's "Install" section, the snippet pointing at $(PREFIX)/bin, the
// config installed once and never overwritten; with PREFIX=/usr the
// snippet and config are those of the .deb.
func TestMakeInstall(t *testing.T) {
	requireTools(t, "make", "dpkg-deb", "tar")
	dest := t.TempDir()
	makeInstall(t, dest, "/usr/local")
	sample, err := os.ReadFile(filepath.Join(repoRoot, "sample.conf"))
	if err != nil {
		t.Fatal(err)
	}
	built, err := os.ReadFile(filepath.Join(repoRoot, "bin", "xdp_udp_ports"))
	if err != nil {
		t.Fatal(err)
	}
	doc := "/usr/local/share/doc/xdp-udp-ports/"
	for path, want := range map[string][]byte{
		"/usr/local/bin/xdp_udp_ports": built,
		confFile:                       sample,
		doc + "README.md":              nil,
		doc + "copyright":              nil,
		"/usr/local/share/man/man1/xdp_udp_ports.1": nil,
	} {
		got, err := os.ReadFile(filepath.Join(dest, path))
		if err != nil {
			t.Errorf("make install: %v", err)
		} else if want != nil && !bytes.Equal(got, want) {
			t.Errorf("make install: %s differs from what it installs", path)
		}
	}
	checkOwnerMode(t, filepath.Join(dest, "/usr/local/bin/xdp_udp_ports"), 0o755)
	checkOwnerMode(t, filepath.Join(dest, confFile), 0o644)
	snippet, err := os.ReadFile(filepath.Join(dest, doc, "xdp_udp_ports.telegraf.conf"))
	if err != nil {
		t.Fatal(err)
	}
	checkSnippetCommand(t, loadSnippet(t, snippet), "/usr/local/bin/xdp_udp_ports")
	if !bytes.Contains(snippet, []byte("cp "+doc+"xdp_udp_ports.telegraf.conf /etc/telegraf/telegraf.d/")) {
		t.Errorf("the snippet does not say how to enable it from %s:\n%s", doc, snippet)
	}

	// Never overwrite an admin's config.
	edited := appendLine(t, filepath.Join(dest, confFile), "# edited by TestMakeInstall")
	makeInstall(t, dest, "/usr/local")
	if got, _ := os.ReadFile(filepath.Join(dest, confFile)); string(got) != edited {
		t.Errorf("a second make install overwrote %s", confFile)
	}

	// One layout: PREFIX=/usr gives the .deb's snippet and config.
	usr := t.TempDir()
	makeInstall(t, usr, "/usr")
	debRoot := t.TempDir()
	run(t, "dpkg-deb", "-x", pkgFile(t, "*.deb"), debRoot)
	for _, path := range []string{snippetFile, confFile, docDir + "/README.md", docDir + "/copyright"} {
		a, errA := os.ReadFile(filepath.Join(usr, path))
		b, errB := os.ReadFile(filepath.Join(debRoot, path))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: make install PREFIX=/usr and the .deb differ (%v, %v)", path, errA, errB)
		}
	}
}

func makeInstall(t *testing.T, dest, prefix string) {
	t.Helper()
	cmd := exec.Command("make", "-C", repoRoot, "--no-print-directory", "install", "DESTDIR="+dest, "PREFIX="+prefix)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install DESTDIR=%s PREFIX=%s: %v\n%s", dest, prefix, err, out)
	}
}

// checkOwnerMode checks the permission bits of a file installed by make
// install (owned by whoever ran it).
func checkOwnerMode(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s: mode %#o, want %#o", strings.TrimPrefix(path, os.TempDir()), fi.Mode().Perm(), perm)
	}
}
