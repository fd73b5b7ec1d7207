//go:build !linux

package xdp_udp_ports

import (
	"errors"

	"github.com/influxdata/telegraf"
)

type runtime struct{}

// Init refuses to run: XDP exists only on Linux.
func (*XDPUDPPorts) Init() error {
	return errors.New("xdp_udp_ports: XDP is only available on Linux")
}

// Start is never reached: Init fails.
func (*XDPUDPPorts) Start(telegraf.Accumulator) error { return nil }

// Gather is never reached: Init fails.
func (*XDPUDPPorts) Gather(telegraf.Accumulator) error { return nil }

// Stop is never reached: Init fails.
func (*XDPUDPPorts) Stop() {}
