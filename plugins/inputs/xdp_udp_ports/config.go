package xdp_udp_ports

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// Option defaults; sample.conf shows the same values commented out.
const (
	defaultXDPMode           = "auto"
	defaultXDPFrags          = "auto"
	defaultMissingInterfaces = "error"
	defaultResyncInterval    = 10 * time.Second
	defaultMaxKernelMemory   = 1 << 30 // 1GiB
)

// Port roles, as the port_roles option and the port_role tag spell them.
const (
	roleDestination = "destination"
	roleSource      = "source"
)

// maxIfNameLen is IFNAMSIZ - 1.
const maxIfNameLen = 15

// settings is the validated configuration, built once by Init.
type settings struct {
	include     nameFilter
	exclude     nameFilter
	mode        bpf.Mode
	destination bool
	source      bool
	ports       []uint16 // allow-list, sorted and unique; nil = every port
	fragsAlways bool
	waitMissing bool
	resync      time.Duration
	pinPath     string
	maxMemory   uint64
}

// nameFilter matches interface names against exact names and shell globs.
type nameFilter struct {
	exact map[string]bool
	globs []string
}

func newNameFilter(option string, patterns []string) (nameFilter, error) {
	f := nameFilter{exact: map[string]bool{}}
	for _, p := range patterns {
		switch {
		case p == "":
			return f, fmt.Errorf("%s: empty interface name", option)
		case isGlob(p):
			if _, err := path.Match(p, ""); err != nil {
				return f, fmt.Errorf("%s: invalid pattern %q: %w", option, p, err)
			}
			f.globs = append(f.globs, p)
		case len(p) > maxIfNameLen:
			return f, fmt.Errorf("%s: interface name %q is longer than %d bytes", option, p, maxIfNameLen)
		default:
			f.exact[p] = true
		}
	}
	return f, nil
}

func isGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func (f nameFilter) match(name string) bool {
	if f.exact[name] {
		return true
	}
	for _, g := range f.globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// parseSettings validates every option; each error names the option and
// the offending value.
func (p *XDPUDPPorts) parseSettings() (*settings, error) {
	s := &settings{}
	var err error
	if len(p.Interfaces) == 0 {
		return nil, errors.New(`interfaces: no interface given; list at least one name or pattern, e.g. interfaces = ["eth0"]`)
	}
	if s.include, err = newNameFilter("interfaces", p.Interfaces); err != nil {
		return nil, err
	}
	if s.exclude, err = newNameFilter("interfaces_exclude", p.InterfacesExclude); err != nil {
		return nil, err
	}
	if s.mode, err = bpf.ParseMode(p.XDPMode); err != nil {
		return nil, fmt.Errorf("xdp_mode: %w", err)
	}
	if len(p.PortRoles) == 0 {
		return nil, errors.New(`port_roles: empty; list "destination", "source" or both`)
	}
	for _, r := range p.PortRoles {
		switch r {
		case roleDestination:
			if s.destination {
				return nil, fmt.Errorf("port_roles: %q listed twice", r)
			}
			s.destination = true
		case roleSource:
			if s.source {
				return nil, fmt.Errorf("port_roles: %q listed twice", r)
			}
			s.source = true
		default:
			return nil, fmt.Errorf(`port_roles: unknown role %q (want "destination" or "source")`, r)
		}
	}
	if s.ports, err = parsePorts(p.Ports); err != nil {
		return nil, err
	}
	frags, err := oneOf("xdp_frags", p.XDPFrags, "auto", "always")
	if err != nil {
		return nil, err
	}
	s.fragsAlways = frags == "always"
	missing, err := oneOf("missing_interfaces", p.MissingInterfaces, "error", "wait")
	if err != nil {
		return nil, err
	}
	s.waitMissing = missing == "wait"
	if s.resync = time.Duration(p.ResyncInterval); s.resync <= 0 {
		return nil, fmt.Errorf("resync_interval: must be positive, got %q", s.resync)
	}
	if p.MaxKernelMemory <= 0 {
		return nil, fmt.Errorf("max_kernel_memory: must be positive, got %d bytes", int64(p.MaxKernelMemory))
	}
	s.maxMemory = uint64(p.MaxKernelMemory)
	s.pinPath = p.PinPath
	return s, nil
}

func oneOf(option, value string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if value == a {
			return value, nil
		}
	}
	return "", fmt.Errorf("%s: unknown value %q (want %s)", option, value, `"`+strings.Join(allowed, `", "`)+`"`)
}

// parsePorts parses the ports allow-list: ports ("53") and inclusive
// ranges ("5060-5061"). The result is sorted and unique; nil if empty.
func parsePorts(entries []string) ([]uint16, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	var set [65536]bool
	for _, e := range entries {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(e), "-")
		first, err := parsePort(e, lo)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = parsePort(e, hi); err != nil {
				return nil, err
			}
			if last < first {
				return nil, fmt.Errorf("ports: invalid range %q: %d is greater than %d", e, first, last)
			}
		}
		for port := first; port <= last; port++ {
			set[port] = true
		}
	}
	var ports []uint16
	for port, ok := range set {
		if ok {
			ports = append(ports, uint16(port))
		}
	}
	return ports, nil
}

func parsePort(entry, s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("ports: invalid entry %q: %q is not a port number", entry, s)
	}
	if n < 0 || n > 65535 {
		return 0, fmt.Errorf("ports: invalid entry %q: port %d is out of range 0-65535", entry, n)
	}
	return n, nil
}

func joinList(items []string) string { return strings.Join(items, ", ") }
