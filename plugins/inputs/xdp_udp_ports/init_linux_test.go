package xdp_udp_ports

import (
	"slices"
	"strings"
	"testing"

	"github.com/influxdata/telegraf/config"
)

func TestInitRejects(t *testing.T) {
	cases := []struct {
		name      string
		configure func(*XDPUDPPorts)
		want      []string // the option and the value the error must name
	}{
		{"no interfaces", func(p *XDPUDPPorts) { p.Interfaces = nil }, []string{"interfaces"}},
		{"empty interface name", func(p *XDPUDPPorts) { p.Interfaces = []string{""} }, []string{"interfaces", "empty"}},
		{"long interface name", func(p *XDPUDPPorts) { p.Interfaces = []string{"abcdefghijklmnop"} }, []string{"interfaces", `"abcdefghijklmnop"`}},
		{"bad glob", func(p *XDPUDPPorts) { p.Interfaces = []string{"eth[0"} }, []string{"interfaces", `"eth[0"`}},
		{"bad exclude glob", func(p *XDPUDPPorts) { p.InterfacesExclude = []string{"[x"} }, []string{"interfaces_exclude", `"[x"`}},
		{"unknown mode", func(p *XDPUDPPorts) { p.XDPMode = "turbo" }, []string{"xdp_mode", `"turbo"`}},
		{"empty roles", func(p *XDPUDPPorts) { p.PortRoles = nil }, []string{"port_roles", "empty"}},
		{"unknown role", func(p *XDPUDPPorts) { p.PortRoles = []string{"both"} }, []string{"port_roles", `"both"`}},
		{"duplicate role", func(p *XDPUDPPorts) { p.PortRoles = []string{"source", "source"} }, []string{"port_roles", `"source"`}},
		{"port out of range", func(p *XDPUDPPorts) { p.Ports = []string{"53", "70000"} }, []string{"ports", `"70000"`}},
		{"reversed range", func(p *XDPUDPPorts) { p.Ports = []string{"10-5"} }, []string{"ports", `"10-5"`}},
		{"not a number", func(p *XDPUDPPorts) { p.Ports = []string{"abc"} }, []string{"ports", `"abc"`}},
		{"negative port", func(p *XDPUDPPorts) { p.Ports = []string{"-5"} }, []string{"ports", `"-5"`}},
		{"unknown frags", func(p *XDPUDPPorts) { p.XDPFrags = "never" }, []string{"xdp_frags", `"never"`}},
		{"unknown missing", func(p *XDPUDPPorts) { p.MissingInterfaces = "ignore" }, []string{"missing_interfaces", `"ignore"`}},
		{"zero resync", func(p *XDPUDPPorts) { p.ResyncInterval = 0 }, []string{"resync_interval"}},
		{"zero memory", func(p *XDPUDPPorts) { p.MaxKernelMemory = 0 }, []string{"max_kernel_memory"}},
		{"relative pin path", func(p *XDPUDPPorts) { p.PinPath = "pins" }, []string{"pin_path", `"pins"`}},
		{"pin path not on bpffs", func(p *XDPUDPPorts) { p.PinPath = t.TempDir() }, []string{"pin_path", "bpffs", "mount -t bpf"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			p.Interfaces = []string{"lo"}
			tc.configure(p)
			err := p.Init()
			if err == nil {
				t.Fatal("Init accepted the configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
			if p.settings != nil {
				t.Error("settings kept after a failed Init")
			}
		})
	}
}

func TestInitAccepts(t *testing.T) {
	p := New()
	p.Interfaces = []string{"eth0", "veth*", "eth[01]"}
	p.PortRoles = []string{"source", "destination"}
	p.Ports = []string{"53", " 123 ", "5060-5061", "0", "65535", "53"}
	p.ResyncInterval = config.Duration(1e9)
	if err := p.Init(); err != nil {
		t.Fatal(err)
	}
	s := p.settings
	if want := []uint16{0, 53, 123, 5060, 5061, 65535}; !slices.Equal(s.ports, want) {
		t.Errorf("ports %v, want %v", s.ports, want)
	}
	if !s.source || !s.destination {
		t.Errorf("roles: source %v destination %v", s.source, s.destination)
	}
	for name, want := range map[string]bool{"eth0": true, "eth1": true, "eth2": false, "veth12": true, "lo": false} {
		if got := s.include.match(name); got != want {
			t.Errorf("match(%q) = %v, want %v", name, got, want)
		}
	}
}

// The defaults in code are the commented defaults in sample.conf.
func TestSampleConfigDefaults(t *testing.T) {
	p := New()
	want := map[string]string{
		"xdp_mode":           `"` + p.XDPMode + `"`,
		"port_roles":         `["` + strings.Join(p.PortRoles, `", "`) + `"]`,
		"xdp_frags":          `"` + p.XDPFrags + `"`,
		"missing_interfaces": `"` + p.MissingInterfaces + `"`,
		"resync_interval":    `"10s"`,
		"max_kernel_memory":  `"1GiB"`,
		"pin_path":           `""`,
		"ports":              `[]`,
		"interfaces_exclude": `[]`,
	}
	for opt, v := range want {
		line := "  # " + opt + " = " + v + "\n"
		if !strings.Contains(sampleConfig, line) {
			t.Errorf("sample.conf lacks the default line %q", line)
		}
	}
	if p.ResyncInterval != config.Duration(defaultResyncInterval) || p.MaxKernelMemory != 1<<30 {
		t.Errorf("defaults changed: resync %v, memory %d", p.ResyncInterval, p.MaxKernelMemory)
	}
}
