//go:build e2e && linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// influxDB is an influxd started for one test in a namespace, with its
// data in a temporary directory, reached over that namespace's loopback.
type influxDB struct {
	dir    string
	proc   *process
	client *http.Client
}

const influxURL = "http://127.0.0.1:8086"

// startInfluxd starts influxd -config influxdb.conf in namespace ns, data
// under dir; waitReady waits for it.
func startInfluxd(t *testing.T, b binaries, ns, dir string) *influxDB {
	t.Helper()
	conf, err := filepath.Abs("influxdb.conf")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "influxdb")
	env := []string{
		"INFLUXDB_META_DIR=" + filepath.Join(data, "meta"),
		"INFLUXDB_DATA_DIR=" + filepath.Join(data, "data"),
		"INFLUXDB_DATA_WAL_DIR=" + filepath.Join(data, "wal"),
	}
	p := startProcessEnv(t, ns, "influxd", filepath.Join(dir, "influxd.log"), env,
		b.influxd, "run", "-config", conf)
	return &influxDB{dir: data, proc: p, client: nsClient(ns)}
}

// waitReady waits until influxd answers /ping.
func (db *influxDB) waitReady(t *testing.T) {
	t.Helper()
	waitHTTP(t, db.proc, db.client, influxURL+"/ping", http.StatusNoContent)
}

// waitHTTP waits until GET url answers with status, failing the test if
// the process exits or 30 s pass.
func waitHTTP(t *testing.T, p *process, c *http.Client, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if p.exited() {
			t.Fatalf("%s exited: %v", p.name, p.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: %v", p.name, url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nsClient is an HTTP client whose connections are made in namespace ns:
// the socket is created on a thread inside ns and stays there.
func nsClient(ns string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := testnet.Do(ns, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, Proxy: nil},
		Timeout:   5 * time.Second,
	}
}

// checkDataDir makes sure the database was written to this test's influxd
// (and not to another server, such as one the influxdb package started).
func (db *influxDB) checkDataDir(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(db.dir, "data", database)); err != nil {
		t.Errorf("database %s not in the test's data directory: %v", database, err)
	}
}

// series is one series of an InfluxQL result.
type series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"` // json.Number, strings (RFC 3339 times), nil
}

// query runs one InfluxQL statement and returns its series (times in
// nanoseconds since the epoch).
func (db *influxDB) query(q string) ([]series, error) {
	v := url.Values{"db": {database}, "q": {q}, "epoch": {"ns"}}
	body, err := httpGet(db.client, influxURL+"/query?"+v.Encode())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	return decodeInfluxJSON(q, body)
}

// decodeInfluxJSON decodes the /query answer to one statement.
func decodeInfluxJSON(q string, body []byte) ([]series, error) {
	var r struct {
		Results []struct {
			Series []series `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: decoding %s: %w", q, body, err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("%s: %s", q, r.Error)
	}
	if len(r.Results) != 1 {
		return nil, fmt.Errorf("%s: %d results", q, len(r.Results))
	}
	if r.Results[0].Error != "" {
		return nil, fmt.Errorf("%s: %s", q, r.Results[0].Error)
	}
	return r.Results[0].Series, nil
}

// fields returns the single row of s as integers by column name (time
// left out).
func (s series) fields() (map[string]int64, error) {
	if len(s.Values) != 1 {
		return nil, fmt.Errorf("series %s %v: %d rows, want 1", s.Name, s.Tags, len(s.Values))
	}
	f := map[string]int64{}
	for i, c := range s.Columns {
		if c == "time" {
			continue
		}
		num, ok := s.Values[0][i].(json.Number)
		if !ok {
			return nil, fmt.Errorf("series %s %v column %s: %v is not a number", s.Name, s.Tags, c, s.Values[0][i])
		}
		n, err := num.Int64()
		if err != nil {
			return nil, fmt.Errorf("series %s %v column %s: %w", s.Name, s.Tags, c, err)
		}
		f[c] = n
	}
	return f, nil
}

// ports reads the last packets and bytes of every xdp_udp_ports series.
func (db *influxDB) ports() (map[portKey]counter, error) {
	ss, err := db.query(`SELECT last(packets) AS packets, last(bytes) AS bytes FROM xdp_udp_ports GROUP BY *`)
	if err != nil {
		return nil, err
	}
	got := map[portKey]counter{}
	for _, s := range ss {
		f, err := s.fields()
		if err != nil {
			return nil, err
		}
		got[portKeyOf(s.Tags)] = counter{f["packets"], f["bytes"]}
	}
	return got, nil
}

// firstPointsZero checks that every series, of xdp_udp_ports and of
// xdp_udp_ports_interface, begins with a 0 point: a new series' first
// packets count in its differences.
func (db *influxDB) firstPointsZero() error {
	for _, m := range []struct{ name, fields string }{
		{"xdp_udp_ports", "first(packets) AS packets, first(bytes) AS bytes"},
		{"xdp_udp_ports_interface", "first(packets) AS packets, first(bytes) AS bytes, first(udp_packets) AS udp_packets, first(other_packets) AS other_packets"},
	} {
		ss, err := db.query(`SELECT ` + m.fields + ` FROM ` + m.name + ` GROUP BY *`)
		if err != nil {
			return err
		}
		if len(ss) == 0 {
			return fmt.Errorf("no %s series", m.name)
		}
		for _, s := range ss {
			f, err := s.fields()
			if err != nil {
				return err
			}
			for name, n := range f {
				if n != 0 {
					return fmt.Errorf("%s series %v begins with %s=%d, want a 0 point first: %v", m.name, s.Tags, name, n, f)
				}
			}
		}
	}
	return nil
}

// summaryFields are the fields of xdp_udp_ports_interface.
var summaryFields = []string{"attached", "packets", "bytes", "udp_packets", "udp_bytes", "udp_fragments", "other_packets", "malformed_packets"}

// summary reads the last value of every field of the
// xdp_udp_ports_interface series, one per direction, each carrying the
// variant's tags; by direction.
func (db *influxDB) summary(v variant, iface string) (map[string]map[string]int64, error) {
	q := "SELECT "
	for i, f := range summaryFields {
		if i > 0 {
			q += ", "
		}
		q += fmt.Sprintf("last(%s) AS %s", f, f)
	}
	ss, err := db.query(q + ` FROM xdp_udp_ports_interface GROUP BY *`)
	if err != nil {
		return nil, err
	}
	if len(ss) != len(directions) {
		return nil, fmt.Errorf("want %d xdp_udp_ports_interface series (one per direction), got %d: %+v", len(directions), len(ss), ss)
	}
	byDir := map[string]map[string]int64{}
	for _, s := range ss {
		dir := s.Tags[tagDirection]
		if want := summaryTags(v, iface, dir); !maps.Equal(s.Tags, want) {
			return nil, fmt.Errorf("summary tags %v, want %v", s.Tags, want)
		}
		f, err := s.fields()
		if err != nil {
			return nil, err
		}
		byDir[dir] = f
	}
	return byDir, nil
}
