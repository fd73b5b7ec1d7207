package xdp_udp_ports

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
)

// Option defaults; sample.conf shows the same values commented out.
const (
	defaultIngressHook       = hookAuto // ingress_hook left unset
	defaultXDPMode           = "auto"
	defaultMaxPorts          = 1000
	defaultXDPFrags          = "auto"
	defaultMissingInterfaces = "error"
	defaultResyncInterval    = 10 * time.Second
	defaultMaxKernelMemory   = 1 << 30 // 1GiB
	defaultAbsentTimeout     = 10 * time.Minute
	// minResyncInterval bounds how often interfaces are re-listed and
	// attachments checked.
	minResyncInterval = 100 * time.Millisecond
)

// Directions, as the directions option and the direction tag spell them.
const (
	dirIngress = "ingress"
	dirEgress  = "egress"
)

// ingress_hook values.
const (
	hookAuto = "auto"
	hookXDP  = "xdp"
	hookTC   = "tc"
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
	include       nameFilter
	exclude       nameFilter
	directions    []bpf.Direction // configured, ingress first
	ingressHook   string          // hookAuto, hookXDP or hookTC
	mode          bpf.Mode
	destination   bool
	source        bool
	ports         []uint16 // allow-list, sorted and unique; nil = every port
	maxPorts      int      // 0: no limit
	fragsAlways   bool
	waitMissing   bool
	resync        time.Duration
	absentTimeout time.Duration
	pinPath       string
	maxMemory     uint64
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

// excludesAll reports whether f (interfaces_exclude) excludes every name
// include can match: include has exact names only and each is excluded.
func (f nameFilter) excludesAll(include nameFilter) bool {
	if len(include.globs) > 0 || len(include.exact) == 0 {
		return false
	}
	for name := range include.exact {
		if !f.match(name) {
			return false
		}
	}
	return true
}

func (f nameFilter) match(name string) bool {
	return f.exact[name] || slices.ContainsFunc(f.globs, func(g string) bool { return globMatch(g, name) })
}

// globMatch matches name against a shell glob checked by newNameFilter.
func globMatch(glob, name string) bool {
	ok, _ := path.Match(glob, name)
	return ok
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
	if s.exclude.excludesAll(s.include) {
		return nil, fmt.Errorf("interfaces: every interface listed (%s) is also excluded by interfaces_exclude: nothing would ever be attached",
			joinList(quoteAll(p.Interfaces)))
	}
	if s.directions, err = parseDirections(p.Directions); err != nil {
		return nil, err
	}
	if s.mode, err = bpf.ParseMode(p.XDPMode); err != nil {
		return nil, fmt.Errorf("xdp_mode: %w", err)
	}
	if s.ingressHook, err = ingressHook(p.IngressHook, p.XDPMode, s.mode); err != nil {
		return nil, err
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
	if p.MaxPorts < 0 {
		return nil, fmt.Errorf("max_ports: must be 0 (no limit) or positive, got %d", p.MaxPorts)
	}
	s.maxPorts = p.MaxPorts
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
	if s.resync = time.Duration(p.ResyncInterval); s.resync < minResyncInterval {
		return nil, fmt.Errorf("resync_interval: must be at least %s, got %q", minResyncInterval, s.resync)
	}
	if s.absentTimeout = time.Duration(p.AbsentInterfaceTimeout); s.absentTimeout <= 0 {
		return nil, fmt.Errorf("absent_interface_timeout: must be positive, got %q", s.absentTimeout)
	}
	if p.MaxKernelMemory <= 0 {
		return nil, fmt.Errorf("max_kernel_memory: must be positive, got %d bytes", int64(p.MaxKernelMemory))
	}
	s.maxMemory = uint64(p.MaxKernelMemory)
	s.pinPath = p.PinPath
	return s, nil
}

// parseDirections parses the directions option: ingress, egress or both.
func parseDirections(dirs []string) ([]bpf.Direction, error) {
	if len(dirs) == 0 {
		return nil, errors.New(`directions: empty; list "ingress", "egress" or both`)
	}
	seen := map[string]bool{}
	var out []bpf.Direction
	for _, d := range dirs {
		if seen[d] {
			return nil, fmt.Errorf("directions: %q listed twice", d)
		}
		seen[d] = true
		switch d {
		case dirIngress:
			out = append([]bpf.Direction{bpf.Ingress}, out...)
		case dirEgress:
			out = append(out, bpf.Egress)
		default:
			return nil, fmt.Errorf(`directions: unknown direction %q (want "ingress" or "egress")`, d)
		}
	}
	return out, nil
}

// ingressHook resolves ingress_hook. Left unset, it is "auto", unless
// xdp_mode asks for a mode: then the user wants XDP (configurations from
// before ingress_hook keep working). Set to "auto" or "tc" together with
// an xdp_mode other than "auto", the two contradict each other.
func ingressHook(hook, xdpMode string, mode bpf.Mode) (string, error) {
	if hook == "" {
		if mode != bpf.ModeAuto {
			return hookXDP, nil
		}
		return defaultIngressHook, nil
	}
	if _, err := oneOf("ingress_hook", hook, hookAuto, hookXDP, hookTC); err != nil {
		return "", err
	}
	if hook != hookXDP && mode != bpf.ModeAuto {
		return "", fmt.Errorf(`ingress_hook = %q and xdp_mode = %q contradict each other: xdp_mode applies to ingress_hook = "xdp" only; `+
			`set ingress_hook = "xdp" or remove xdp_mode`, hook, xdpMode)
	}
	return hook, nil
}

func quoteAll(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = strconv.Quote(s)
	}
	return out
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
