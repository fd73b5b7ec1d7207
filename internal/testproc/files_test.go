package testproc

import (
	"os"
	"testing"
)

func TestPluginConfig(t *testing.T) {
	path := PluginConfig(t, "eth0", `xdp_mode = "native"`, "max_ports = 5")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[[inputs.xdp_udp_ports]]\n  interfaces = [\"eth0\"]\n  xdp_mode = \"native\"\n  max_ports = 5\n"; string(got) != want {
		t.Errorf("%s:\n%s\nwant:\n%s", path, got, want)
	}
	if fi, err := os.Stat(PublicDir(t)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("PublicDir: %v %v, want mode 0755", fi, err)
	}
}
