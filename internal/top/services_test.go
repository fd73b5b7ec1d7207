package top

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseServices(t *testing.T) {
	got := parseServices(strings.NewReader(`# Network services, Internet style
domain		53/tcp				# Domain Name Server
domain		53/udp
ntp		123/udp				# Network Time Protocol
https		443/tcp
syslog		514/udp
syslog-alt	514/udp		# a second name: the first wins
discard		9/udp		sink null
broken		70000/udp
nonumber	x/udp
lonely
# comment only
mdns		5353/udp			# Multicast DNS
`))
	want := services{53: "domain", 123: "ntp", 514: "syslog", 9: "discard", 5353: "mdns"}
	if !maps.Equal(got, want) {
		t.Errorf("parsed %v, want %v", got, want)
	}
	for port, name := range map[string]string{"53": "domain", "443": "", "other": "", "65535": ""} {
		if n := got.name(port); n != name {
			t.Errorf("name(%q) = %q, want %q", port, n, name)
		}
	}
}

// An absent or unreadable services file gives ports without names.
func TestLoadServicesMissing(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "absent"), dir} {
		if s := loadServices(path); len(s) != 0 {
			t.Errorf("loadServices(%s) = %v, want no names", path, s)
		}
	}
	path := filepath.Join(dir, "services")
	if err := os.WriteFile(path, []byte("domain 53/udp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := loadServices(path); s.name("53") != "domain" {
		t.Errorf("loadServices(%s) = %v", path, s)
	}
}
