//go:build e2e && linux

package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promServer is a Prometheus server started for one test in a namespace,
// with its storage in a temporary directory, scraping Telegraf's
// prometheus_client there.
type promServer struct {
	proc   *process
	client *http.Client
}

const (
	promURL = "http://127.0.0.1:9090"
	// Telegraf's prometheus_client: the README's, and one without
	// metric_types (telegraf.conf.tmpl).
	metricsURL    = "http://127.0.0.1:9273/metrics"
	untypedListen = "127.0.0.1:9274"
	// minSamples before rate() and increase() are checked: their
	// extrapolation is then at most 10 % (README, "Run it with Prometheus").
	minSamples = 12
)

// The metric names and labels the README lists (metric_version 1:
// <measurement>_<field>); Prometheus adds job and instance.
var (
	promPortMetrics    = []string{"xdp_udp_ports_bytes", "xdp_udp_ports_packets"}
	promPortLabels     = slices.Sorted(slices.Values([]string{"__name__", "instance", "job", tagDirection, tagInterface, tagPort, tagRole}))
	promSummaryMetrics = func() []string {
		var names []string
		for _, f := range summaryFields {
			names = append(names, "xdp_udp_ports_interface_"+f)
		}
		return names
	}()
)

// startPrometheus starts Prometheus in namespace ns with the README's
// scrape configuration (its interval scaled to the test's); waitReady
// waits for it.
func startPrometheus(t *testing.T, b binaries, ns, dir, scrapeBlock string) *promServer {
	t.Helper()
	conf := replaceOnce(t, scrapeBlock, "scrape_interval: 5s", "scrape_interval: "+promScrape)
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, ns, "prometheus", filepath.Join(dir, "prometheus.log"), b.prometheus,
		"--config.file="+path, "--storage.tsdb.path="+filepath.Join(dir, "prometheus"),
		"--web.listen-address=127.0.0.1:9090", "--log.level=warn")
	return &promServer{proc: p, client: nsClient(ns)}
}

func (s *promServer) waitReady(t *testing.T) {
	t.Helper()
	waitHTTP(t, s.proc, s.client, promURL+"/-/ready", http.StatusOK)
}

// scraping succeeds once Prometheus has tried to scrape Telegraf (up is
// there, 0 while Telegraf is not listening yet).
func (s *promServer) scraping() error {
	ss, err := s.query(`up{job="telegraf"}`, time.Now())
	if err != nil {
		return err
	}
	if len(ss) == 0 {
		return fmt.Errorf("no scrape yet")
	}
	return nil
}

// promSeries is one series of a PromQL result: one point for an instant
// vector, the raw samples for a range vector.
type promSeries struct {
	labels map[string]string
	points []promPoint
}

type promPoint struct {
	t time.Time
	v float64
}

func (p *promPoint) UnmarshalJSON(b []byte) error {
	var raw [2]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	ts, ok1 := raw[0].(float64)
	vs, ok2 := raw[1].(string)
	if !ok1 || !ok2 {
		return fmt.Errorf("sample %s", b)
	}
	v, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return err
	}
	p.t, p.v = time.UnixMilli(int64(ts*1000+0.5)), v
	return nil
}

// query evaluates q at time at over /api/v1/query.
func (s *promServer) query(q string, at time.Time) ([]promSeries, error) {
	v := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	body, err := httpGet(s.client, promURL+"/api/v1/query?"+v.Encode())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  *promPoint        `json:"value"`
				Values []promPoint       `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", q, body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s %s", q, r.Status, r.Error)
	}
	var ss []promSeries
	for _, res := range r.Data.Result {
		s := promSeries{labels: res.Metric, points: res.Values}
		if res.Value != nil {
			s.points = []promPoint{*res.Value}
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// metricTypes reads the # TYPE lines of our metrics from a /metrics page.
func metricTypes(c *http.Client, u string) (map[string]string, []byte, error) {
	body, err := httpGet(c, u)
	if err != nil {
		return nil, nil, err
	}
	types := map[string]string{}
	var ours bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "xdp_udp_ports") {
			continue
		}
		fmt.Fprintln(&ours, line)
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	return types, ours.Bytes(), sc.Err()
}

// checkPrometheus checks what Prometheus scraped from Telegraf against the
// ledger, and runs the README's PromQL.
func checkPrometheus(t *testing.T, s *promServer, v variant, blocks map[string]string, l *ledger) {
	t.Helper()
	wantNames := slices.Concat(promPortMetrics, promSummaryMetrics)
	slices.Sort(wantNames)

	// The type of every series: with the README's metric_types counter,
	// attached a gauge; without, what the variant gets by itself.
	readmeType := func(name string) string {
		if name == "xdp_udp_ports_interface_attached" {
			return "gauge"
		}
		return "counter"
	}
	for _, c := range []struct {
		url  string
		want func(name string) string
	}{
		{metricsURL, readmeType},
		{"http://" + untypedListen + "/metrics", func(string) string { return v.wantType }},
	} {
		types, page, err := metricTypes(s.client, c.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(types)); !slices.Equal(got, wantNames) {
			t.Errorf("%s: metrics %v, want %v", c.url, got, wantNames)
		}
		for name, typ := range types {
			if want := c.want(name); typ != want {
				t.Errorf("%s: %s has type %s, want %s", c.url, name, typ, want)
			}
		}
		if c.url == metricsURL {
			t.Logf("%s:\n%s", c.url, page)
		}
	}

	// The raw samples: exact, as InfluxDB's last().
	waitFor(t, "the per-port counts in Prometheus", func() error {
		got, err := s.ports(time.Now())
		if err != nil {
			return err
		}
		if !equalPorts(got, l.last) {
			return fmt.Errorf("\n%s", diffPorts(got, l.last))
		}
		return nil
	})
	waitFor(t, "the summary in Prometheus", func() error { return s.checkSummary(v, l) })
	waitFor(t, fmt.Sprintf("%d samples of every series", minSamples), func() error {
		ss, err := s.query(`min(count_over_time(xdp_udp_ports_packets[1h]))`, time.Now())
		if err != nil {
			return err
		}
		if len(ss) != 1 || ss[0].points[0].v < minSamples {
			return fmt.Errorf("%+v", ss)
		}
		return nil
	})

	at := time.Now()
	s.checkLeadingZeros(t, v, l, at)
	ppsWindow, n5m := s.window(t, blocks[blockPromQLPPS], at)
	want := map[portKey]counter{}
	for _, k := range ports(l.total, "", roleDestination) {
		want[k] = l.total[k]
	}

	// Packets and bits per second per direction and port: × the window,
	// the packets and bytes sent, up to rate()'s extrapolation.
	for _, c := range []struct {
		block string
		unit  func(counter) int64
		scale float64 // from the query's value to a count
	}{
		{blockPromQLPPS, func(c counter) int64 { return c.packets }, ppsWindow},
		{blockPromQLBPS, func(c counter) int64 { return c.bytes }, ppsWindow / 8},
	} {
		got := s.byPort(t, c.block, blocks[c.block], at)
		if g, w := slices.SortedFunc(maps.Keys(got), comparePortKeys), slices.SortedFunc(maps.Keys(want), comparePortKeys); !slices.Equal(g, w) {
			t.Errorf("README query %s: series %v, want %v", c.block, g, w)
		}
		for k, w := range want {
			if err := checkExtrapolated(got[k]*c.scale, c.unit(w), n5m[k]); err != nil {
				t.Errorf("README query %s, %s port %s: %v", c.block, k.dir, k.port, err)
			}
		}
	}

	// Top 10 by bytes received: the ten ports that had the most, each up
	// to increase()'s extrapolation.
	_, n1h := s.window(t, blocks[blockPromQLTop10], at)
	got := s.byPort(t, blockPromQLTop10, blocks[blockPromQLTop10], at)
	var wantTop []portKey
	for _, k := range topBytes(l.total, dirIngress, roleDestination, 10) {
		wantTop = append(wantTop, k)
		if err := checkExtrapolated(got[k], l.total[k].bytes, n1h[k]); err != nil {
			t.Errorf("README query %s, port %s: %v", blockPromQLTop10, k.port, err)
		}
	}
	gotTop := slices.Collect(maps.Keys(got))
	slices.SortFunc(gotTop, func(a, b portKey) int { return cmp.Compare(got[b], got[a]) })
	if !slices.Equal(gotTop, wantTop) {
		t.Errorf("README query %s: ports %v (by value), want %v", blockPromQLTop10, gotTop, wantTop)
	}
}

func comparePortKeys(a, b portKey) int {
	return cmp.Or(strings.Compare(a.dir, b.dir), strings.Compare(a.role, b.role), strings.Compare(a.port, b.port))
}

// ports reads the newest sample of every xdp_udp_ports series.
func (s *promServer) ports(at time.Time) (map[portKey]counter, error) {
	ss, err := s.query(`{__name__=~"xdp_udp_ports_(packets|bytes)"}`, at)
	if err != nil {
		return nil, err
	}
	got := map[portKey]counter{}
	for _, se := range ss {
		if names := slices.Sorted(maps.Keys(se.labels)); !slices.Equal(names, promPortLabels) {
			return nil, fmt.Errorf("series %v: labels %v, want %v", se.labels, names, promPortLabels)
		}
		k := portKeyOf(se.labels)
		c := got[k]
		if se.labels["__name__"] == "xdp_udp_ports_packets" {
			c.packets = int64(se.points[0].v)
		} else {
			c.bytes = int64(se.points[0].v)
		}
		got[k] = c
	}
	return got, nil
}

// checkSummary checks the newest xdp_udp_ports_interface samples of each
// direction: the variant's labels, the counts of this plugin process, the
// invariant.
func (s *promServer) checkSummary(v variant, l *ledger) error {
	ss, err := s.query(`{__name__=~"xdp_udp_ports_interface_.*"}`, time.Now())
	if err != nil {
		return err
	}
	byDir := map[string]map[string]int64{}
	for _, se := range ss {
		name := strings.TrimPrefix(se.labels["__name__"], "xdp_udp_ports_interface_")
		tags := maps.Clone(se.labels)
		for _, k := range []string{"__name__", "job", "instance"} {
			delete(tags, k)
		}
		dir := tags[tagDirection]
		if want := summaryTags(v, l.iface, dir); !maps.Equal(tags, want) {
			return fmt.Errorf("series %v: want labels %v", se.labels, want)
		}
		if byDir[dir] == nil {
			byDir[dir] = map[string]int64{}
		}
		byDir[dir][name] = int64(se.points[0].v)
	}
	if len(byDir) != len(directions) {
		return fmt.Errorf("summary of directions %v, want %v", slices.Sorted(maps.Keys(byDir)), directions)
	}
	for _, dir := range directions {
		f := byDir[dir]
		if len(f) != len(summaryFields) {
			return fmt.Errorf("%s summary metrics %v, want the %d of %v", dir, f, len(summaryFields), summaryFields)
		}
		if err := checkSummaryFields(f, l.runSummary[dir]); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	return nil
}

// checkLeadingZeros checks that every per-port series and the summary of
// each direction begin with a 0 sample (so increase() sees the first
// packets) and, after a restart of the plugin, that the restarted series
// went back to 0 before counting on.
func (s *promServer) checkLeadingZeros(t *testing.T, v variant, l *ledger, at time.Time) {
	t.Helper()
	ss, err := s.query(`xdp_udp_ports_packets[1h]`, at)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := s.query(`xdp_udp_ports_interface_packets[1h]`, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != len(directions) {
		t.Errorf("xdp_udp_ports_interface_packets: %d series, want one per direction", len(sums))
	}
	for _, se := range append(ss, sums...) {
		k := portKeyOf(se.labels)
		if len(se.points) == 0 || se.points[0].v != 0 {
			var pts []string
			for _, pt := range se.points[:min(3, len(se.points))] {
				pts = append(pts, fmt.Sprintf("%s=%g", pt.t.Format("15:04:05.000"), pt.v))
			}
			t.Errorf("Prometheus series %v does not begin with 0: %v", se.labels, pts)
			continue
		}
		resets := 0
		for i := 1; i < len(se.points); i++ {
			if se.points[i].v < se.points[i-1].v {
				resets++
			}
		}
		wantResets := 0
		switch {
		case !v.execd: // no restart
		case se.labels["__name__"] == "xdp_udp_ports_interface_packets":
			wantResets = 1 // the summary goes on in the new process, from 0
		case l.last[k] != l.total[k]: // counted before and after the restart
			wantResets = 1
		}
		if resets != wantResets {
			t.Errorf("Prometheus series %v: %d resets, want %d", se.labels, resets, wantResets)
		}
	}
}

var rangeRE = regexp.MustCompile(`\[(\d+)([smh])\]`)

// window returns the range of a README query in seconds and the number
// of samples of each destination port's series in it.
func (s *promServer) window(t *testing.T, query string, at time.Time) (float64, map[portKey]int) {
	t.Helper()
	m := rangeRE.FindStringSubmatch(query)
	if m == nil {
		t.Fatalf("no [range] in %q", query)
	}
	n, _ := strconv.Atoi(m[1])
	secs := float64(n) * map[string]float64{"s": 1, "m": 60, "h": 3600}[m[2]]
	ss, err := s.query(fmt.Sprintf(`count_over_time(xdp_udp_ports_bytes{%s=%q, %s=%q}%s)`,
		tagInterface, readmeInterface, tagRole, roleDestination, m[0]), at)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[portKey]int{}
	for _, se := range ss {
		counts[portKeyOf(se.labels)] = int(se.points[0].v)
	}
	return secs, counts
}

// byPort runs a README query on destination ports whose result is one
// value per direction and port, or per port of ingress (only a port
// label).
func (s *promServer) byPort(t *testing.T, name, query string, at time.Time) map[portKey]float64 {
	t.Helper()
	ss, err := s.query(query, at)
	if err != nil {
		t.Fatalf("README query %s: %v", name, err)
	}
	got := map[portKey]float64{}
	var out strings.Builder
	for _, se := range ss {
		dir, hasDir := se.labels[tagDirection]
		if !hasDir {
			dir = dirIngress
		}
		if se.labels[tagPort] == "" || len(se.labels) != map[bool]int{false: 1, true: 2}[hasDir] {
			t.Fatalf("README query %s: series %v, want a port label and perhaps direction, no other", name, se.labels)
		}
		k := portKey{readmeInterface, dir, roleDestination, se.labels[tagPort]}
		got[k] = se.points[0].v
		fmt.Fprintf(&out, "  %s port %s: %g\n", dir, k.port, se.points[0].v)
	}
	t.Logf("README query %s:\n%s%s", name, query, out.String())
	return got
}

// checkExtrapolated checks increase() (or rate() × its window) of a
// series that began inside the window with a 0 sample, n samples in it,
// against the true count: Prometheus extrapolates nothing before a series
// that starts at 0 and at most 1.1 sample intervals past its last sample,
// so the result is at least the count and at most count × (1 + 1.1/(n−1)),
// within 10 % from 12 samples on.
func checkExtrapolated(got float64, count int64, n int) error {
	if n < minSamples {
		return fmt.Errorf("%d samples in the window, want at least %d", n, minSamples)
	}
	lo, hi := float64(count), float64(count)*(1+1.1/float64(n-1))
	const eps = 1e-9
	if got < lo*(1-eps) || got > hi*(1+eps) || got > 1.1*float64(count)*(1+eps) {
		return fmt.Errorf("%g, want %d up to extrapolation: [%g, %g] (%d samples)", got, count, lo, hi, n)
	}
	return nil
}
