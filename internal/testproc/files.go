package testproc

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// WriteConfig writes body to plugin.conf in a directory of the test's own
// and returns its path.
func WriteConfig(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin.conf")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// PluginConfig writes a config of one [[inputs.xdp_udp_ports]] table
// watching iface, with the given option lines, and returns its path.
func PluginConfig(t testing.TB, iface string, options ...string) string {
	t.Helper()
	body := fmt.Sprintf("[[inputs.xdp_udp_ports]]\n  interfaces = [%q]\n", iface)
	for _, o := range options {
		body += "  " + o + "\n"
	}
	return WriteConfig(t, body)
}

// PublicDir makes a directory any user may enter and read (t.TempDir is
// 0700), for what an unprivileged process is given, and removes it at
// cleanup.
func PublicDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "xdp_udp_ports-public")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
