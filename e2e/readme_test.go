//go:build e2e && linux

package e2e

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The README's queries and configuration snippets that the end-to-end test
// runs as printed: each is a fenced block right after a line
// "<!-- e2e: NAME -->" (invisible on GitHub).
const (
	blockInfluxQLRun     = "influxql-run"     // the curl and influx command lines
	blockInfluxQLTotals  = "influxql-totals"  // packets and bytes per port in a window
	blockInfluxQLRates   = "influxql-rates"   // pps and bps per port in 10 s buckets
	blockInfluxQLTop10   = "influxql-top10"   // top 10 ports by bytes
	blockInfluxQLSummary = "influxql-summary" // the interface summary by class
	blockTelegrafExecd   = "telegraf-execd"   // the execd snippet for telegraf.d
	blockTelegrafProm    = "telegraf-prometheus"
	blockPromScrape      = "prometheus-scrape"
	blockPromQLPPS       = "promql-pps"
	blockPromQLBPS       = "promql-bps"
	blockPromQLTop10     = "promql-top10"
)

var testedBlocks = []string{
	blockInfluxQLRun, blockInfluxQLTotals, blockInfluxQLRates, blockInfluxQLTop10, blockInfluxQLSummary,
	blockTelegrafExecd, blockTelegrafProm, blockPromScrape, blockPromQLPPS, blockPromQLBPS, blockPromQLTop10,
}

var (
	markerRE = regexp.MustCompile(`^<!-- e2e: ([a-z0-9-]+) -->$`)
	fenceRE  = regexp.MustCompile("^```([a-z]*)$")
)

// queryLanguages are the fences whose every block is a query the test
// must run.
var queryLanguages = []string{"sql", "promql"}

type readmeBlock struct {
	lang, text string
}

// parseREADME returns the marked blocks by name, and the fenced blocks
// that have no marker.
func parseREADME(t *testing.T) (marked map[string]readmeBlock, unmarked []readmeBlock) {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	marked = map[string]readmeBlock{}
	name := ""
	for i := 0; i < len(lines); i++ {
		if m := markerRE.FindStringSubmatch(lines[i]); m != nil {
			name = m[1]
			continue
		}
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			if strings.TrimSpace(lines[i]) != "" {
				name = ""
			}
			continue
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		b := readmeBlock{lang: m[1], text: strings.Join(body, "\n") + "\n"}
		switch {
		case name == "":
			unmarked = append(unmarked, b)
		case marked[name] != readmeBlock{}:
			t.Fatalf("README.md: two blocks marked %q", name)
		default:
			marked[name] = b
		}
		name = ""
	}
	return marked, unmarked
}

// readme returns the marked README blocks the test runs.
func readme(t *testing.T) map[string]string {
	t.Helper()
	marked, _ := parseREADME(t)
	blocks := map[string]string{}
	for _, name := range testedBlocks {
		b, ok := marked[name]
		if !ok {
			t.Fatalf("README.md has no block marked <!-- e2e: %s -->", name)
		}
		blocks[name] = b.text
	}
	return blocks
}

// TestREADMEQueriesTested makes sure that every query printed in the
// README is one the end-to-end test runs: a new query without a marker,
// or a marker the test does not know, fails.
func TestREADMEQueriesTested(t *testing.T) {
	marked, unmarked := parseREADME(t)
	for _, b := range unmarked {
		if slices.Contains(queryLanguages, b.lang) {
			t.Errorf("README.md has a %s block without an <!-- e2e: NAME --> marker: the end-to-end test must run it:\n%s", b.lang, b.text)
		}
	}
	for name := range marked {
		if !slices.Contains(testedBlocks, name) {
			t.Errorf("README.md marks block %q, which the end-to-end test does not run", name)
		}
	}
	for _, name := range testedBlocks {
		if _, ok := marked[name]; !ok {
			t.Errorf("README.md has no block marked <!-- e2e: %s -->", name)
		}
	}
}

// replaceOnce replaces old in a README block, failing if the block does
// not contain it exactly once (so that the README and the test cannot
// drift apart silently).
func replaceOnce(t *testing.T, block, old, new string) string {
	t.Helper()
	if n := strings.Count(block, old); n != 1 {
		t.Fatalf("README block has %d occurrences of %q, want 1:\n%s", n, old, block)
	}
	return strings.Replace(block, old, new, 1)
}

// TestExecdSnippet makes sure that the execd configuration the end-to-end
// test runs is the one users get: the README's marked snippet is the
// packaged xdp_udp_ports.telegraf.conf (from its [[inputs.execd]] on, with
// the package's /usr/bin), and every other [[inputs.execd]] table the
// README prints has the same settings (comments aside).
func TestExecdSnippet(t *testing.T) {
	marked, unmarked := parseREADME(t)
	snippet := marked[blockTelegrafExecd].text
	if snippet == "" {
		t.Fatalf("README.md has no block marked <!-- e2e: %s -->", blockTelegrafExecd)
	}
	raw, err := os.ReadFile("../packaging/xdp_udp_ports.telegraf.conf.in")
	if err != nil {
		t.Fatal(err)
	}
	pkg := strings.ReplaceAll(string(raw), "@BINDIR@", "/usr/bin")
	i := strings.Index(pkg, "[[inputs.execd]]")
	if i < 0 {
		t.Fatalf("packaging/xdp_udp_ports.telegraf.conf.in has no [[inputs.execd]]")
	}
	if pkg[i:] != snippet {
		t.Errorf("README.md's %s block differs from the packaged snippet (packaging/xdp_udp_ports.telegraf.conf.in, @BINDIR@ = /usr/bin):\nREADME:\n%s\npackaged:\n%s", blockTelegrafExecd, snippet, pkg[i:])
	}
	n := 0
	for _, b := range unmarked {
		if b.lang != "toml" || !strings.Contains(b.text, "[[inputs.execd]]") {
			continue
		}
		n++
		if got, want := settings(b.text), settings(snippet); !slices.Equal(got, want) {
			t.Errorf("README.md prints an [[inputs.execd]] table other than the tested snippet:\n%s\nwant the settings of\n%s", b.text, snippet)
		}
	}
	t.Logf("the tested snippet, and %d more [[inputs.execd]] tables in the README with its settings", n)
}

// settings are the lines of a TOML block without comments and blank lines.
func settings(block string) []string {
	var out []string
	for _, line := range strings.Split(block, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
