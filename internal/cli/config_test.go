package cli

import (
	"strings"
	"testing"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

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
		"telegraf.conf": {"[agent]\n  interval = \"10s\"\n[[outputs.influxdb]]\n  urls = []\n[[inputs.xdp_udp_ports]]\n  interfaces = [\"lo\"]\n",
			[]string{"[agent], [[outputs.influxdb]]: this looks like a telegraf.conf", "-config takes the plugin's own file", "[[inputs.execd]]"}},
		"execd table": {"[[inputs.execd]]\n  command = [\"xdp_udp_ports\", \"-config\", \"x.conf\"]\n",
			[]string{"[[inputs.execd]]: this looks like a telegraf.conf"}},
		"outside a table": {"interfaces = [\"lo\"]\n", []string{"interfaces outside any table", "under [[inputs.xdp_udp_ports]]"}},
		"single brackets": {"[inputs.xdp_udp_ports]\n  interfaces = [\"lo\"]\n",
			[]string{"[inputs.xdp_udp_ports] is a single table", "write [[inputs.xdp_udp_ports]], with double brackets"}},
		"telegraf options": {"[[inputs.xdp_udp_ports]]\n  interfaces = [\"lo\"]\n  interval = \"10s\"\n  name_override = \"udp\"\n  fieldinclude = [\"bytes\"]\n  portz = 1\n  [inputs.xdp_udp_ports.tags]\n    dc = \"a\"\n  [inputs.xdp_udp_ports.tagpass]\n    port = [\"53\"]\n",
			[]string{"unknown option(s) portz;", "fieldinclude, interval, name_override, tagpass, tags: Telegraf's own per-plugin option(s)",
				"set them on the [[inputs.execd]] table", "-poll_interval"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(testproc.WriteConfig(t, tc.body))
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
	p, err := LoadConfig(testproc.WriteConfig(t, "[[inputs.xdp_udp_ports]]\n  interfaces = [\"$XDP_TEST_IFACE\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Interfaces[0] != "veth9" {
		t.Errorf("interfaces %v", p.Interfaces)
	}
}
