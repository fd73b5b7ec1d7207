package top

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

func TestTopPlugin(t *testing.T) {
	cfg := testproc.WriteConfig(t, "[[inputs.xdp_udp_ports]]\n  interfaces = [\"eth0\"]\n  ports = [\"53\"]\n  pin_path = \"/sys/fs/bpf/xdp\"\n"+
		"  directions = [\"ingress\", \"egress\"]\n  max_ports = 5\n")
	for _, c := range []struct {
		name, config, ifaces string
		want                 []string
		err                  string
	}{
		{name: "config", config: cfg, want: []string{"eth0"}},
		{name: "-i replaces", config: cfg, ifaces: "veth*, eth1", want: []string{"veth*", "eth1"}},
		{name: "defaults and -i", ifaces: "lo", want: []string{"lo"}},
		{name: "nothing", err: "no interface: give -i"},
		{name: "empty name", ifaces: "eth0,,eth1", err: `-i "eth0,,eth1": empty interface name`},
		{name: "bad config", config: testproc.WriteConfig(t, "[[inputs.xdp_udp_ports]]\n  portz = []\n"), err: "portz"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			p, err := topPlugin(c.config, c.ifaces, &messages{w: &log})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Interfaces, c.want) {
				t.Errorf("interfaces %q, want %q", p.Interfaces, c.want)
			}
			if p.PinPath != "" {
				t.Errorf("pin_path %q kept", p.PinPath)
			}
			// top shows every port: no series limit.
			if p.MaxPorts != 0 {
				t.Errorf("max_ports %d, want 0", p.MaxPorts)
			}
			if c.config == cfg && (!slices.Equal(p.Ports, []string{"53"}) || !slices.Equal(p.Directions, []string{"ingress", "egress"}) ||
				!strings.Contains(log.String(), `I! pin_path "/sys/fs/bpf/xdp" is not used by top`)) {
				t.Errorf("ports %q, directions %q, log %q", p.Ports, p.Directions, log.String())
			}
		})
	}
}

// fakePlugin gathers prepared readings, one per Gather, then nothing.
type fakePlugin struct {
	readings [][]point
	gathers  int
	stopped  int // gathers before Stop
}

func (f *fakePlugin) Gather(acc telegraf.Accumulator) error {
	if f.gathers < len(f.readings) {
		for _, p := range f.readings[f.gathers] {
			acc.AddCounter(p.name, p.fields, p.tags, p.time)
		}
	}
	f.gathers++
	return nil
}

func (f *fakePlugin) Stop() { f.stopped = f.gathers }

// runFake runs top on readings until it is stopped after the baseline and
// returns its final output and the Gathers done before Stop.
func runFake(t *testing.T, readings ...[]point) (string, int) {
	t.Helper()
	var msgs, out bytes.Buffer
	f := &fakePlugin{readings: readings}
	tp := &top{
		plugin:   f,
		watching: []string{"eth0"},
		msgs:     &messages{w: &msgs},
		model:    newModel(),
		screen:   &plainScreen{w: &out},
		out:      &out,
		interval: time.Hour,
	}
	tp.acc = &collector{msgs: tp.msgs}
	stop := make(chan os.Signal, 1)
	stop <- os.Interrupt
	if code := tp.run(stop, nil); code != 0 {
		t.Errorf("exit code %d; messages:\n%s", code, &msgs)
	}
	if f.stopped != f.gathers {
		t.Errorf("Gather after Stop")
	}
	return out.String(), f.stopped
}

// A Gather with series the plugin starts (their leading 0) is followed by
// another at once, and the last counts: a port whose first packets came
// just before a reading shows them in it, with their rate - also the
// last reading, for the totals.
func TestReadGathersAgainAfterStarts(t *testing.T) {
	summary := func(sec float64, udp int64) []point { return at(sec, ifacePoint("eth0", "tcx", udp, 0)) }
	port53 := func(sec float64, packets int64) []point {
		return at(sec, portPoint("eth0", "destination", "53", packets, 100*packets), ifacePoint("eth0", "tcx", 7, 0))
	}
	// The baseline's summary starts: 2 Gathers; the last reading's port
	// starts: 2 more.
	out, gathers := runFake(t, summary(0, 0), summary(0.01, 0), port53(1, 0), port53(1.01, 7))
	row := regexp.MustCompile(`(?m)^eth0\s+53\s+7\s+700\s+100\.0%$`)
	if gathers != 4 || !row.MatchString(out) {
		t.Errorf("%d Gathers (want 4), totals without %s:\n%s", gathers, row, out)
	}
	// Nothing starts in the last reading: one Gather.
	if _, gathers = runFake(t, summary(0, 0), summary(0.01, 0), summary(1, 0)); gathers != 3 {
		t.Errorf("%d Gathers, want 3", gathers)
	}
	// Series that keep starting: at most finalGathers in the last reading.
	readings := [][]point{summary(0, 0), summary(0.01, 0)}
	for i := range 10 {
		readings = append(readings, at(float64(1+i), portPoint("eth0", "destination", strconv.Itoa(1000+i), 0, 0), ifacePoint("eth0", "tcx", 0, 0)))
	}
	if _, gathers = runFake(t, readings...); gathers != 2+finalGathers {
		t.Errorf("%d Gathers, want %d", gathers, 2+finalGathers)
	}

	// Live: the rate of a port that starts is there in the reading that
	// first has its packets.
	f := &fakePlugin{readings: [][]point{summary(0, 0), summary(0.01, 0), port53(1, 0), port53(1.01, 7)}}
	tp := &top{plugin: f, model: newModel(), msgs: &messages{w: &bytes.Buffer{}}}
	tp.acc = &collector{msgs: tp.msgs}
	tp.read(liveGathers)
	tp.read(liveGathers)
	if s := tp.model.ports[portKey{"eth0", dirIngress, "destination", "53"}]; f.gathers != 4 || s == nil || s.packets.total != 7 || s.packets.rate < 6.9 {
		t.Errorf("%d Gathers (want 4), port 53 %+v", f.gathers, s)
	}
}
