package top

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/cli"
	plugin "github.com/xdp-udp-ports/xdp_udp_ports/plugins/inputs/xdp_udp_ports"
)

const topUsage = `Usage: xdp_udp_ports top [-config FILE] [-i IFACE[,IFACE...]] [-n 20] [-interval 1s] [-duration D] [-debug]

Attaches like the plugin (same options from the config file, directions
included; -i replaces its interfaces) and shows, every interval, the UDP
ports by packet rate: every port (max_ports does not apply; -n bounds the
table). On a terminal it redraws in place; otherwise it prints one block per
interval. On Ctrl-C, SIGTERM or when -duration ends it detaches and prints
the totals of every port seen.

`

// Run is `xdp_udp_ports top`: the plugin, gathered every interval into a
// live table, then its totals. args follow "top"; it returns the exit code.
func Run(args []string) int {
	fs := flag.NewFlagSet("xdp_udp_ports top", flag.ContinueOnError)
	configFile := fs.String("config", "", "read the plugin's options from `FILE` (one [[inputs.xdp_udp_ports]] table); without it, the plugin's defaults")
	ifaces := fs.String("i", "", "attach to `IFACE[,IFACE...]` (names or globs), replacing the config's interfaces")
	rows := fs.Int("n", 20, "show at most `N` ports in the live view (0: all; on a terminal, as many as fit)")
	interval := fs.Duration("interval", time.Second, "read the counters and redraw every `D`")
	duration := fs.Duration("duration", 0, "stop after `D` (0: at Ctrl-C or SIGTERM)")
	debug := fs.Bool("debug", false, "log debug messages too")
	// Not in the usage: where port names come from, for tests.
	servicesFile := fs.String("services", defaultServicesFile, "")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), topUsage)
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name == "services" {
				return
			}
			arg, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(fs.Output(), "  -%s %s\n    \t%s", f.Name, arg, usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
				fmt.Fprintf(fs.Output(), " (default %s)", f.DefValue)
			}
			fmt.Fprintln(fs.Output())
		})
	}
	if code, ok := cli.ParseFlags(fs, args, os.Stdout, os.Stderr, nil); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "E! %v\n", err)
		return 1
	}
	var bad error
	switch {
	case *rows < 0:
		bad = fmt.Errorf("-n: must not be negative, got %d (0 shows all)", *rows)
	case *interval <= 0:
		bad = fmt.Errorf("-interval: must be positive, got %s", *interval)
	case *duration < 0:
		bad = fmt.Errorf("-duration: must not be negative, got %s", *duration)
	}
	if bad != nil {
		fmt.Fprintf(os.Stderr, "E! %s: %v\n", fs.Name(), bad)
		return 2
	}
	msgs := &messages{w: os.Stderr}
	p, err := topPlugin(*configFile, *ifaces, msgs)
	if err != nil {
		return fail(err)
	}
	p.Log = cli.NewLogger(msgs, *debug)
	if err := p.Init(); err != nil {
		return fail(err)
	}
	t := &top{
		plugin:   p,
		watching: p.Interfaces,
		acc:      &collector{msgs: msgs},
		msgs:     msgs,
		model:    newModel(),
		svc:      loadServices(*servicesFile),
		screen:   newScreen(os.Stdout),
		out:      os.Stdout,
		rows:     *rows,
		interval: *interval,
	}
	// Signals are caught before Start: one that comes while attaching
	// stops the view as soon as it begins.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stop)
	if err := p.Start(t.acc); err != nil {
		return fail(err)
	}
	var end <-chan time.Time
	if *duration > 0 {
		end = time.After(*duration)
	}
	return t.run(stop, end)
}

// topPlugin makes the plugin from the config file (or its defaults), the
// interfaces replaced by -i when given. pin_path is not used: top attaches
// programs of its own and detaches them when it ends; adopting the pins of
// a running Telegraf could replace them (their counts restarting from
// zero) and would leave them attached. max_ports is not either: it bounds
// the series Telegraf stores, while top shows every port the kernel counts
// (-n bounds its table).
func topPlugin(configFile, ifaces string, msgs *messages) (*plugin.XDPUDPPorts, error) {
	p := plugin.New()
	if configFile != "" {
		var err error
		if p, err = cli.LoadConfig(configFile); err != nil {
			return nil, err
		}
	}
	if ifaces != "" {
		p.Interfaces = nil
		for _, name := range strings.Split(ifaces, ",") {
			if name = strings.TrimSpace(name); name == "" {
				return nil, fmt.Errorf("-i %q: empty interface name", ifaces)
			}
			p.Interfaces = append(p.Interfaces, name)
		}
	}
	if len(p.Interfaces) == 0 {
		return nil, errors.New("no interface: give -i IFACE[,IFACE...] or a -config file with interfaces")
	}
	if p.PinPath != "" {
		msgs.add(telegraf.Info, fmt.Sprintf("pin_path %q is not used by top: it attaches programs of its own and detaches them when it ends", p.PinPath))
		p.PinPath = ""
	}
	p.MaxPorts = 0
	return p, nil
}

// gatherer is the started plugin, as top uses it.
type gatherer interface {
	Gather(telegraf.Accumulator) error
	Stop()
}

// top is one run of the view, from Start to the final table.
type top struct {
	plugin   gatherer
	watching []string // the interfaces option
	acc      *collector
	msgs     *messages
	model    *model
	svc      services
	screen   screen
	out      io.Writer
	rows     int
	interval time.Duration
	live     bool // the screen is a terminal
}

// run reads the counters (the first reading is the baseline), redraws
// every interval until stop or end, then reads them a last time, detaches
// (Stop) and prints the totals. On a terminal the first frame, with the
// totals so far, comes at once. It returns the exit code: 1 if no
// interface was ever attached.
func (t *top) run(stop <-chan os.Signal, end <-chan time.Time) int {
	defer t.screen.close() // also on a panic: the terminal comes back
	_, t.live = t.screen.(*termScreen)
	if t.live {
		t.msgs.holdWhileLive()
	}
	t.read(liveGathers)
	if t.live {
		t.draw()
	}
	ticker := time.NewTicker(t.interval)
	defer ticker.Stop()
loop:
	for {
		select {
		case <-ticker.C:
			t.read(liveGathers)
			t.draw()
		case <-stop:
			break loop
		case <-end:
			break loop
		}
	}
	t.read(finalGathers)
	t.screen.close()
	t.msgs.release()
	t.plugin.Stop()
	var b strings.Builder
	for _, l := range finalLines(t.model, t.svc) {
		b.WriteString(l + "\n")
	}
	fmt.Fprint(t.out, b.String())
	if !t.model.everAttached {
		t.msgs.add(telegraf.Error, "no interface was attached (watching "+strings.Join(t.watching, ", ")+")")
		return 1
	}
	return 0
}

// draw shows a frame. Its status lines are the latest messages: always on
// a terminal (stderr is hidden behind the view); in plain blocks, where
// messages go to stderr as they come, only while nothing is attached, so
// that the blocks say why.
func (t *top) draw() {
	status := t.msgs.latest()
	if !t.live && len(t.model.attached()) > 0 {
		status = nil
	}
	t.screen.draw(liveLines(t.model, t.svc, liveOptions{
		now:      t.model.last,
		interval: t.interval,
		rows:     t.rows,
		height:   t.screen.height(),
		watching: t.watching,
		status:   status,
	}))
}

// Gathers of one reading at most: live, and the last one, for the totals.
const (
	liveGathers  = 2
	finalGathers = 3
)

// read takes one reading into the model; a Gather error goes to the
// messages. The plugin emits a series that starts counting (a port's first
// packets, an interface attached) first with 0 and with its value from the
// next Gather on (see model.countStarts). When a Gather has such series,
// read gathers again at once, up to gathers times in all, and takes the
// last: a new port shows its first packets and their rate in the same
// reading as the interface summary, and the totals have the first packets
// of a port that began just before the end. Only a series that started in
// the milliseconds since the Gather before is 0 in the next one.
func (t *top) read(gathers int) {
	now := time.Now()
	var points []point
	for i := 0; i < gathers && (i == 0 || t.model.countStarts(points) > 0); i++ {
		if err := t.plugin.Gather(t.acc); err != nil {
			t.acc.AddError(err)
		}
		points = t.acc.drain()
	}
	t.model.update(points, now)
}
