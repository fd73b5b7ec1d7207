package bpf

import "fmt"

// FrameOf returns where frames start on a link of the given type, as
// netlink names it (LinkAttrs.EncapType, from the ARPHRD_* type). Only
// tested link types are supported; others are refused rather than counted
// wrong: PPP, ipip/sit and GRE, for example, put outer headers in front of
// the packet at TC egress.
func FrameOf(encapType string) (Frame, error) {
	switch encapType {
	case "ether", "loopback": // loopback frames carry an Ethernet header
		return FrameEthernet, nil
	case "none": // ARPHRD_NONE: TUN, WireGuard
		return FrameIP, nil
	}
	return 0, fmt.Errorf("link type %q is not supported (supported: Ethernet, loopback, and links without a link-layer header such as TUN and WireGuard)", encapType)
}
