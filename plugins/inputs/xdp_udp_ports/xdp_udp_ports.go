// Package xdp_udp_ports is a Telegraf service input that counts UDP packets
// and bytes per port with an eBPF program (XDP or TC) on each configured
// interface, in each configured direction.
package xdp_udp_ports

import (
	_ "embed"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/plugins/inputs"
)

//go:embed sample.conf
var sampleConfig string

// Measurement names.
const (
	measurementPorts     = "xdp_udp_ports"
	measurementInterface = "xdp_udp_ports_interface"
)

// XDPUDPPorts is the plugin; its exported fields are the options.
type XDPUDPPorts struct {
	Interfaces             []string        `toml:"interfaces"`
	InterfacesExclude      []string        `toml:"interfaces_exclude"`
	Directions             []string        `toml:"directions"`
	IngressHook            string          `toml:"ingress_hook"`
	XDPMode                string          `toml:"xdp_mode"`
	PortRoles              []string        `toml:"port_roles"`
	Ports                  []string        `toml:"ports"`
	MaxPorts               int             `toml:"max_ports"`
	XDPFrags               string          `toml:"xdp_frags"`
	MissingInterfaces      string          `toml:"missing_interfaces"`
	ResyncInterval         config.Duration `toml:"resync_interval"`
	MaxKernelMemory        config.Size     `toml:"max_kernel_memory"`
	AbsentInterfaceTimeout config.Duration `toml:"absent_interface_timeout"`
	PinPath                string          `toml:"pin_path"`

	Log telegraf.Logger `toml:"-"`

	settings *settings
	runtime  // platform state (xdp_udp_ports_linux.go)
}

// SampleConfig returns the embedded sample.conf.
func (*XDPUDPPorts) SampleConfig() string { return sampleConfig }

// New returns the plugin with every option at its default.
func New() *XDPUDPPorts {
	return &XDPUDPPorts{
		Directions:             []string{dirIngress},
		XDPMode:                defaultXDPMode,
		PortRoles:              []string{roleDestination},
		MaxPorts:               defaultMaxPorts,
		XDPFrags:               defaultXDPFrags,
		MissingInterfaces:      defaultMissingInterfaces,
		ResyncInterval:         config.Duration(defaultResyncInterval),
		MaxKernelMemory:        config.Size(defaultMaxKernelMemory),
		AbsentInterfaceTimeout: config.Duration(defaultAbsentTimeout),
	}
}

func init() {
	inputs.Add("xdp_udp_ports", func() telegraf.Input { return New() })
}
