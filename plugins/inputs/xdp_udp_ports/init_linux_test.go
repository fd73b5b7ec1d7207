package xdp_udp_ports

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
		{"resync below 100ms", func(p *XDPUDPPorts) { p.ResyncInterval = config.Duration(99 * time.Millisecond) }, []string{"resync_interval", "100ms", `"99ms"`}},
		{"every name excluded", func(p *XDPUDPPorts) { p.Interfaces, p.InterfacesExclude = []string{"eth0", "eth1"}, []string{"eth*"} },
			[]string{"interfaces", `"eth0"`, "interfaces_exclude", "nothing would ever be attached"}},
		{"memory below one interface", func(p *XDPUDPPorts) { p.MaxKernelMemory = 1 << 20 }, []string{"max_kernel_memory", "1.0 MiB", "too small", "ports allow-list"}},
		{"memory below one interface, both directions", func(p *XDPUDPPorts) {
			p.Ports, p.Directions = []string{"53"}, []string{"ingress", "egress"}
			p.MaxKernelMemory = 200 << 10
		}, []string{"max_kernel_memory", "2 directions"}},
		{"empty directions", func(p *XDPUDPPorts) { p.Directions = nil }, []string{"directions", "empty"}},
		{"unknown direction", func(p *XDPUDPPorts) { p.Directions = []string{"inbound"} }, []string{"directions", `"inbound"`}},
		{"duplicate direction", func(p *XDPUDPPorts) { p.Directions = []string{"egress", "egress"} }, []string{"directions", `"egress"`, "twice"}},
		{"unknown ingress hook", func(p *XDPUDPPorts) { p.IngressHook = "kprobe" }, []string{"ingress_hook", `"kprobe"`}},
		{"tc with an xdp_mode", func(p *XDPUDPPorts) { p.IngressHook, p.XDPMode = "tc", "native" }, []string{"ingress_hook", `"tc"`, "xdp_mode", `"native"`}},
		{"auto with an xdp_mode", func(p *XDPUDPPorts) { p.IngressHook, p.XDPMode = "auto", "generic" }, []string{"ingress_hook", `"auto"`, "xdp_mode", `"generic"`}},
		{"negative max_ports", func(p *XDPUDPPorts) { p.MaxPorts = -1 }, []string{"max_ports", "-1"}},
		{"zero absent timeout", func(p *XDPUDPPorts) { p.AbsentInterfaceTimeout = 0 }, []string{"absent_interface_timeout"}},
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

// xdp_mode set without ingress_hook means XDP (configurations from before
// ingress_hook keep working); the minimum resync_interval is accepted.
func TestInitHooks(t *testing.T) {
	for _, tc := range []struct{ hook, mode, want string }{
		{"", "auto", hookAuto},
		{"", "native", hookXDP},
		{"", "generic", hookXDP},
		{"xdp", "auto", hookXDP},
		{"tc", "auto", hookTC},
		{"auto", "auto", hookAuto},
	} {
		p := New()
		p.Interfaces, p.IngressHook, p.XDPMode = []string{"lo"}, tc.hook, tc.mode
		p.ResyncInterval = config.Duration(100 * time.Millisecond)
		if err := p.Init(); err != nil {
			t.Errorf("ingress_hook %q, xdp_mode %q: %v", tc.hook, tc.mode, err)
			continue
		}
		if p.settings.ingressHook != tc.want {
			t.Errorf("ingress_hook %q, xdp_mode %q: hook %q, want %q", tc.hook, tc.mode, p.settings.ingressHook, tc.want)
		}
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
		"xdp_mode":                 `"` + p.XDPMode + `"`,
		"port_roles":               `["` + strings.Join(p.PortRoles, `", "`) + `"]`,
		"xdp_frags":                `"` + p.XDPFrags + `"`,
		"missing_interfaces":       `"` + p.MissingInterfaces + `"`,
		"resync_interval":          `"10s"`,
		"max_kernel_memory":        `"1GiB"`,
		"pin_path":                 `""`,
		"ports":                    `[]`,
		"interfaces_exclude":       `[]`,
		"directions":               `["` + strings.Join(p.Directions, `", "`) + `"]`,
		"ingress_hook":             `"` + defaultIngressHook + `"`,
		"max_ports":                strconv.Itoa(p.MaxPorts),
		"absent_interface_timeout": `"10m"`,
	}
	for opt, v := range want {
		line := "  # " + opt + " = " + v + "\n"
		if !strings.Contains(sampleConfig, line) {
			t.Errorf("sample.conf lacks the default line %q", line)
		}
	}
	if p.IngressHook != "" {
		t.Errorf("ingress_hook defaults to %q, want unset (auto, or xdp when xdp_mode is set)", p.IngressHook)
	}
	if p.AbsentInterfaceTimeout != config.Duration(defaultAbsentTimeout) || defaultAbsentTimeout != 10*time.Minute {
		t.Errorf("absent_interface_timeout default %v", p.AbsentInterfaceTimeout)
	}
	if p.ResyncInterval != config.Duration(defaultResyncInterval) || p.MaxKernelMemory != 1<<30 {
		t.Errorf("defaults changed: resync %v, memory %d", p.ResyncInterval, p.MaxKernelMemory)
	}
}
