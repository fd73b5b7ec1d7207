package bpf

// Run `make generate` (it sets BPF2GO_CFLAGS, including the include path of
// asm/types.h) rather than go generate directly.
//go:generate go tool bpf2go -tags linux -type counter -type xdp_udp_ports_limits -type xdp_udp_ports_class -type xdp_udp_ports_frame xdpUdpPorts xdp_udp_ports.c
