//go:build e2e && linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// table is one series of a query result as both the curl and the influx
// CLI form give it: cells as text, numbers in one canonical form, times
// in nanoseconds.
type table struct {
	Name    string
	Tags    map[string]string
	Columns []string
	Rows    [][]string
}

// cell returns row i's value of column c as a number.
func (tb table) num(i int, c string) (float64, error) {
	for j, name := range tb.Columns {
		if name == c {
			return strconv.ParseFloat(tb.Rows[i][j], 64)
		}
	}
	return 0, fmt.Errorf("%s %v: no column %q in %v", tb.Name, tb.Tags, c, tb.Columns)
}

func (tb table) text(i int, c string) string {
	for j, name := range tb.Columns {
		if name == c {
			return tb.Rows[i][j]
		}
	}
	return ""
}

func canonical(s string) string {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return s
}

// influxQLRunner runs a README query the two ways the README shows, from
// a directory holding the query file the command lines name.
type influxQLRunner struct {
	ns, dir, file string
	curl, cli     string // the README's command lines
}

func newInfluxQLRunner(t *testing.T, ns, dir, block string) *influxQLRunner {
	t.Helper()
	r := &influxQLRunner{ns: ns, dir: filepath.Join(dir, "influxql")}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		switch strings.Fields(line)[0] {
		case "curl":
			r.curl = line
		case "influx":
			r.cli = line
		default:
			t.Fatalf("README block %s: unexpected line %q", blockInfluxQLRun, line)
		}
	}
	for _, f := range strings.Fields(r.curl) {
		if name, ok := strings.CutPrefix(f, "q@"); ok {
			r.file = name
		}
	}
	if r.curl == "" || r.cli == "" || r.file == "" || !strings.Contains(r.cli, "< "+r.file) {
		t.Fatalf("README block %s: want a curl line reading q@FILE and an influx line reading < FILE:\n%s", blockInfluxQLRun, block)
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs query both ways and returns its result, failing the test if
// either fails or they differ.
func (r *influxQLRunner) run(t *testing.T, name, query string) []table {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, r.file), []byte(query), 0o644); err != nil {
		t.Fatal(err)
	}
	out := r.shell(t, r.curl)
	viaCurl, err := parseCurl(out)
	if err != nil {
		t.Fatalf("README query %s with curl: %v\n%s", name, err, query)
	}
	out = r.shell(t, r.cli)
	viaCLI, err := parseInfluxCLI(out)
	if err != nil {
		t.Fatalf("README query %s with the influx CLI: %v\n%s", name, err, out)
	}
	if !reflect.DeepEqual(viaCurl, viaCLI) {
		t.Errorf("README query %s: curl and the influx CLI differ:\ncurl: %+v\nCLI:  %+v", name, viaCurl, viaCLI)
	}
	t.Logf("README query %s:\n%s%s", name, query, out)
	return viaCurl
}

// shell runs a README command line with sh inside the namespace.
func (r *influxQLRunner) shell(t *testing.T, line string) []byte {
	t.Helper()
	cmd := testnet.Command(r.ns, "sh", "-c", line)
	cmd.Dir = r.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", line, err, out, stderr.Bytes())
	}
	return out
}

// parseCurl reads /query's JSON answer (times as RFC 3339).
func parseCurl(body []byte) ([]table, error) {
	ss, err := decodeInfluxJSON("", body)
	if err != nil {
		return nil, err
	}
	var tables []table
	for _, s := range ss {
		tb := table{Name: s.Name, Tags: s.Tags, Columns: s.Columns}
		if tb.Tags == nil {
			tb.Tags = map[string]string{}
		}
		for _, vals := range s.Values {
			row := make([]string, len(vals))
			for i, v := range vals {
				switch v := v.(type) {
				case json.Number:
					row[i] = canonical(v.String())
				case string:
					row[i] = v
					if s.Columns[i] == "time" {
						ts, err := time.Parse(time.RFC3339Nano, v)
						if err != nil {
							return nil, err
						}
						row[i] = strconv.FormatInt(ts.UnixNano(), 10)
					}
				case nil:
					row[i] = ""
				default:
					row[i] = fmt.Sprint(v)
				}
			}
			tb.Rows = append(tb.Rows, row)
		}
		tables = append(tables, tb)
	}
	return tables, nil
}

// parseInfluxCLI reads the influx CLI's column output: per series a
// "name:" line, a "tags:" line if grouped by tags, a header, a line of
// dashes under each column, the rows, and a blank line.
func parseInfluxCLI(out []byte) ([]table, error) {
	var tables []table
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] == "" {
			continue
		}
		name, ok := strings.CutPrefix(lines[i], "name: ")
		if !ok {
			return nil, fmt.Errorf("line %d: %q, want name: …", i+1, lines[i])
		}
		tb := table{Name: name, Tags: map[string]string{}}
		i++
		if tags, ok := strings.CutPrefix(lines[i], "tags: "); ok {
			for _, kv := range strings.Split(tags, ", ") {
				k, v, _ := strings.Cut(kv, "=")
				tb.Tags[k] = v
			}
			i++
		}
		if i+1 >= len(lines) {
			return nil, fmt.Errorf("series %s: no header", name)
		}
		header, dashes := lines[i], lines[i+1]
		var starts []int
		for j := 0; j < len(dashes); j++ {
			if dashes[j] == '-' && (j == 0 || dashes[j-1] == ' ') {
				starts = append(starts, j)
			}
		}
		cut := func(line string) []string {
			cells := make([]string, len(starts))
			for k, s := range starts {
				end := len(line)
				if k+1 < len(starts) && starts[k+1] < end {
					end = starts[k+1]
				}
				if s < end {
					cells[k] = strings.TrimSpace(line[s:end])
				}
			}
			return cells
		}
		tb.Columns = cut(header)
		for i += 2; i < len(lines) && lines[i] != ""; i++ {
			row := cut(lines[i])
			for k := range row {
				if tb.Columns[k] != "time" { // nanoseconds, as parseCurl makes them
					row[k] = canonical(row[k])
				}
			}
			tb.Rows = append(tb.Rows, row)
		}
		tables = append(tables, tb)
	}
	return tables, nil
}

// checkInfluxQL runs every InfluxQL query of the README, with curl and
// with the influx CLI, and checks what the README says it returns.
func checkInfluxQL(t *testing.T, ns, dir string, blocks map[string]string, l *ledger) {
	t.Helper()
	r := newInfluxQLRunner(t, ns, dir, blocks[blockInfluxQLRun])
	want := map[portKey]counter{}
	for _, k := range ports(l.total, "", roleDestination) {
		want[k] = l.total[k]
	}

	// Totals: exact packets and bytes per direction and port, restarts and
	// first bursts included.
	got := map[portKey]counter{}
	for _, tb := range r.run(t, blockInfluxQLTotals, blocks[blockInfluxQLTotals]) {
		p, errP := tb.num(0, "packets")
		b, errB := tb.num(0, "bytes")
		if len(tb.Rows) != 1 || errP != nil || errB != nil {
			t.Fatalf("totals: series %+v, want one row with packets and bytes", tb)
		}
		got[portKey{l.iface, tb.Tags[tagDirection], roleDestination, tb.Tags[tagPort]}] = counter{int64(p), int64(b)}
	}
	if !equalPorts(got, want) {
		t.Errorf("README query %s:\n%s", blockInfluxQLTotals, diffPorts(got, want))
	}

	// Rates: pps × 10 and bps × 10 / 8 summed over the buckets are the
	// totals.
	got = map[portKey]counter{}
	for _, tb := range r.run(t, blockInfluxQLRates, blocks[blockInfluxQLRates]) {
		var sum [2]float64
		for i := range tb.Rows {
			pps, err1 := tb.num(i, "pps")
			bps, err2 := tb.num(i, "bps")
			if err1 != nil || err2 != nil {
				t.Fatalf("rates: series %+v: %v %v", tb, err1, err2)
			}
			sum[0] += pps * 10
			sum[1] += bps * 10 / 8
		}
		got[portKey{l.iface, tb.Tags[tagDirection], roleDestination, tb.Tags[tagPort]}] = counter{round(t, sum[0]), round(t, sum[1])}
	}
	if !equalPorts(got, want) {
		t.Errorf("README query %s: pps × 10 and bps × 10 / 8 summed over the buckets are not the totals:\n%s",
			blockInfluxQLRates, diffPorts(got, want))
	}

	// Top 10: the ten ports that received the most bytes, most first,
	// exact.
	top := topBytes(l.total, dirIngress, roleDestination, 10)
	var wantTop, gotTop []string
	for _, k := range top {
		wantTop = append(wantTop, fmt.Sprintf("%s=%d", k.port, l.total[k].bytes))
	}
	tbs := r.run(t, blockInfluxQLTop10, blocks[blockInfluxQLTop10])
	if len(tbs) != 1 {
		t.Fatalf("top 10: %d series, want 1: %+v", len(tbs), tbs)
	}
	for i := range tbs[0].Rows {
		b, err := tbs[0].num(i, "bytes")
		if err != nil {
			t.Fatal(err)
		}
		gotTop = append(gotTop, fmt.Sprintf("%s=%d", tbs[0].text(i, tagPort), int64(b)))
	}
	if !reflect.DeepEqual(gotTop, wantTop) {
		t.Errorf("README query %s: got %v, want %v", blockInfluxQLTop10, gotTop, wantTop)
	}

	// The interface summary per direction: exact by class (other at least
	// what was sent), packets the sum of the classes.
	tbs = r.run(t, blockInfluxQLSummary, blocks[blockInfluxQLSummary])
	var dirs []string
	for _, tb := range tbs {
		dir := tb.Tags[tagDirection]
		dirs = append(dirs, dir)
		if len(tb.Rows) != 1 || tb.Tags[tagInterface] != l.iface {
			t.Fatalf("summary: %+v, want one row for interface %s", tb, l.iface)
		}
		f := map[string]int64{}
		for _, c := range tb.Columns[1:] {
			v, err := tb.num(0, c)
			if err != nil {
				t.Fatal(err)
			}
			f[c] = int64(v)
		}
		if err := checkSummaryFields(f, l.totalSummary[dir]); err != nil {
			t.Errorf("README query %s, %s: %v", blockInfluxQLSummary, dir, err)
		}
	}
	if slices.Sort(dirs); !slices.Equal(dirs, []string{dirEgress, dirIngress}) {
		t.Errorf("README query %s: directions %v, want egress and ingress", blockInfluxQLSummary, dirs)
	}
}

// round returns f as an integer, failing the test unless it is one (up
// to float rounding).
func round(t *testing.T, f float64) int64 {
	t.Helper()
	r := math.Round(f)
	if math.Abs(f-r) > 1e-6*math.Max(1, math.Abs(f)) {
		t.Errorf("%v is not a whole number", f)
	}
	return int64(r)
}
