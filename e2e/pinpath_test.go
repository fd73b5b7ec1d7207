//go:build e2e && linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// checkPinPathOwned is what an admin does on a host where Telegraf (tg,
// the built-in variant with pin_path, conf) runs as the service: checks a
// config with `telegraf --config FILE --test`, once an edited one (the
// same plugin table with ports = ["53"]) and once the service's own. In
// both the plugin's Start must fail, naming the pin directory and the
// service's pid, and leave the service's programs attached; the caller
// then checks that its counts are still exact. Telegraf's test mode logs
// an input's Start error and goes on without it: it prints no metric and
// exits 0 all the same (README, "When Start fails").
func checkPinPathOwned(t *testing.T, b binaries, p *testnet.Pair, tg *process, v variant, dir, conf, pinDir string, progs []testnet.Program) {
	t.Helper()
	edited := filepath.Join(dir, "edited.conf")
	table := pluginTable(t, v, p.ReceiverIf, pinDir, []string{"53"})
	if err := os.WriteFile(edited, []byte("[agent]\n  omit_hostname = true\n\n"+table), 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("E! [agent] Starting input inputs.xdp_udp_ports: pin_path: %s is in use by another running xdp_udp_ports instance (pid %d)", pinDir, tg.pid())
	for _, c := range []struct{ what, conf string }{
		{"an edited config (ports = [\"53\"])", edited},
		{"the service's own config", conf},
	} {
		out, err := testnet.Command(p.Receiver, b.telegrafXDP, "--config", c.conf, "--test").CombinedOutput()
		code := testnet.ExitCode(err)
		if !bytes.Contains(out, []byte(want)) || bytes.Contains(out, []byte("> xdp_udp_ports")) {
			t.Errorf("telegraf --test with %s while the service runs (exit %d): want the error %q and no metrics:\n%s", c.what, code, want, out)
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, want) {
				t.Logf("telegraf --test with %s: exit %d, logged:\n%s", c.what, code, line)
			}
		}
	}
	if got := testnet.OurPrograms(t, p.Receiver, p.ReceiverIf); !slices.Equal(got, progs) {
		t.Errorf("the service's programs after the --test runs: %v, want %v unchanged", got, progs)
	}
}
