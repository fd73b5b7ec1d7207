//go:build package

package packaging

import (
	"strings"
	"testing"
)

// TestLintian runs Debian's lintian on the .deb: no errors (the one for
// the static Go binary is overridden, with the reason, in
// packaging/lintian-overrides). Warnings and notes are logged.
func TestLintian(t *testing.T) {
	requireTools(t, "lintian")
	deb := pkgFile(t, "*.deb")
	// --fail-on none: exit 1 is a lintian run-time error, tags are read
	// from the output.
	out := run(t, "lintian", "--fail-on", "none", "--display-info", "--pedantic", "--show-overrides", deb)
	t.Logf("lintian %s:\n%s", deb, out)
	count := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if kind, _, ok := strings.Cut(line, ": "); ok && len(kind) == 1 {
			count[kind]++
			if kind == "E" {
				t.Errorf("lintian error: %s", line)
			}
		}
	}
	t.Logf("lintian: %d errors, %d warnings, %d info, %d pedantic, %d overridden",
		count["E"], count["W"], count["I"], count["P"], count["O"])
}
