package top

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
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

func TestTopPlugin(t *testing.T) {
	cfg := writeConfig(t, "[[inputs.xdp_udp_ports]]\n  interfaces = [\"eth0\"]\n  ports = [\"53\"]\n  pin_path = \"/sys/fs/bpf/xdp\"\n"+
		"  directions = [\"ingress\", \"egress\"]\n  max_ports = 5\n")
	for _, c := range []struct {
		name, config, ifaces string
		want                 []string
		err                  string
	}{
		{name: "config", config: cfg, want: []string{"eth0"}},
		{name: "-i replaces", config: cfg, ifaces: "veth*, eth1", want: []string{"veth*", "eth1"}},
		{name: "defaults and -i", ifaces: "lo", want: []string{"lo"}},
		{name: "nothing", err: "no interface: give -i"},
		{name: "empty name", ifaces: "eth0,,eth1", err: `-i "eth0,,eth1": empty interface name`},
		{name: "bad config", config: writeConfig(t, "[[inputs.xdp_udp_ports]]\n  portz = []\n"), err: "portz"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			p, err := topPlugin(c.config, c.ifaces, &messages{w: &log})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Interfaces, c.want) {
				t.Errorf("interfaces %q, want %q", p.Interfaces, c.want)
			}
			if p.PinPath != "" {
				t.Errorf("pin_path %q kept", p.PinPath)
			}
			// top shows every port: no series limit.
			if p.MaxPorts != 0 {
				t.Errorf("max_ports %d, want 0", p.MaxPorts)
			}
			if c.config == cfg && (!slices.Equal(p.Ports, []string{"53"}) || !slices.Equal(p.Directions, []string{"ingress", "egress"}) ||
				!strings.Contains(log.String(), `I! pin_path "/sys/fs/bpf/xdp" is not used by top`)) {
				t.Errorf("ports %q, directions %q, log %q", p.Ports, p.Directions, log.String())
			}
		})
	}
}
