package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin.conf")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigRejects(t *testing.T) {
	cases := map[string]struct {
		body string
		want []string
	}{
		"unknown option": {"[[inputs.xdp_udp_ports]]\n  interfaces = [\"lo\"]\n  xdp_modes = \"native\"\n", []string{"unknown option", "xdp_modes"}},
		"second table":   {"[[inputs.xdp_udp_ports]]\n  interfaces = [\"lo\"]\n[[inputs.xdp_udp_ports]]\n  interfaces = [\"eth0\"]\n", []string{"2 [[inputs.xdp_udp_ports]] tables"}},
		"other plugin":   {"[[inputs.cpu]]\n", []string{"[[inputs.cpu]]"}},
		"no table":       {"", []string{"no [[inputs.xdp_udp_ports]] table"}},
		"wrong type":     {"[[inputs.xdp_udp_ports]]\n  interfaces = \"lo\"\n", []string{"interfaces"}},
		"bad toml":       {"[[inputs.xdp_udp_ports]\n", []string{"plugin.conf"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tc.body))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigSample(t *testing.T) {
	p, err := LoadConfig("../../sample.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Interfaces) != 1 || p.Interfaces[0] != "lo" || p.XDPMode != "auto" {
		t.Errorf("sample.conf loaded as %+v", p)
	}
}

func TestLoadConfigEnv(t *testing.T) {
	t.Setenv("XDP_TEST_IFACE", "veth9")
	p, err := LoadConfig(writeConfig(t, "[[inputs.xdp_udp_ports]]\n  interfaces = [\"$XDP_TEST_IFACE\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Interfaces[0] != "veth9" {
		t.Errorf("interfaces %v", p.Interfaces)
	}
}
