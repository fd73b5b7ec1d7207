package testproc

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// Capability numbers (linux/capability.h) the binary needs or accepts.
const (
	CapNetAdmin = 12
	CapSysAdmin = 21
	CapPerfmon  = 38
	CapBPF      = 39
)

// CapMask is the bit mask of caps, as /proc/<pid>/status shows sets.
func CapMask(caps ...int) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << c
	}
	return m
}

// Creds are a process's real uid and capability sets.
type Creds struct {
	UID                    string
	CapInh, CapEff, CapAmb uint64
}

// ReadCreds reads the credentials of process pid from /proc.
func ReadCreds(t testing.TB, pid int) Creds {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var c Creds
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		var dst *uint64
		switch k {
		case "Uid":
			c.UID = f[0]
		case "CapInh":
			dst = &c.CapInh
		case "CapEff":
			dst = &c.CapEff
		case "CapAmb":
			dst = &c.CapAmb
		}
		if dst != nil {
			if *dst, err = strconv.ParseUint(f[0], 16, 64); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}
