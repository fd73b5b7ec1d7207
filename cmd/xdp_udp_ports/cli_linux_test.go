package main

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

// runBinary runs the binary to its end (stdin empty) and returns its exit
// code, stdout and stderr.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s: still running after 20s", strings.Join(args, " "))
	}
	return testnet.ExitCode(err), out.String(), errOut.String()
}

var levelMarked = regexp.MustCompile(`^[EWID]! `)

// requireLevelMarked fails unless every line of stderr starts with a
// level marker, as Telegraf's execd needs to log it at its level.
func requireLevelMarked(t *testing.T, stderr string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if line != "" && !levelMarked.MatchString(line) {
			t.Errorf("stderr line without a level marker: %q", line)
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"top", "-h"}, {"unpin", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runBinary(t, args...)
			if code != 0 || !strings.HasPrefix(stdout, "Usage: xdp_udp_ports") || stderr != "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want 0, the usage on stdout, nothing on stderr", code, stdout, stderr)
			}
		})
	}
}

// Usage errors are one E! line and exit code 2; nothing is attached.
// The interface named does not exist: a binary that ignored the error
// would fail to start (exit 1), never attach.
func TestUsageErrors(t *testing.T) {
	cfg := testproc.WriteConfig(t, "[[inputs.xdp_udp_ports]]\n  interfaces = [\"xdpnone0\"]\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-config", cfg, "top", "-i", "xdpnone0"},
			`unexpected argument "top" after the flags; a subcommand comes first: xdp_udp_ports top -config ` + cfg + ` -i xdpnone0`},
		{[]string{"-config", cfg, "extra"}, `unexpected argument "extra" after the flags`},
		{[]string{"top", "-i", "xdpnone0", "extra"}, `unexpected argument "extra" after the flags`},
		{[]string{"unpin", "-config", cfg, "extra"}, `unexpected argument "extra" after the flags`},
		{[]string{"top", "-i", "xdpnone0", "-n", "-5"}, "-n: must not be negative, got -5"},
		{[]string{"top", "-i", "xdpnone0", "-interval", "0s"}, "-interval: must be positive"},
		{[]string{"-config", cfg, "-poll_interval", "0s"}, "-poll_interval: must be positive"},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
		{[]string{"top", "-nope"}, "flag provided but not defined: -nope"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, stdout, stderr := runBinary(t, c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want exit 2 and one line saying %q", code, stdout, stderr, c.want)
			}
			requireLevelMarked(t, stderr)
		})
	}
}
