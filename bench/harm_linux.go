//go:build linux

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// HarmConfig is what both ends of one veth run while iperf3 measures its
// throughput ("do no harm", issue 11).
type HarmConfig struct {
	Name string
	// Options are the plugin's options besides interfaces; "" and not
	// BareXDP: nothing attached.
	Options string
	// BareXDP attaches a bare XDP_PASS program in native mode instead;
	// BareTCX a bare SCHED_CLS program at the head of tcx ingress and
	// egress.
	BareXDP, BareTCX bool
	// Hooks are where each end must then carry a program.
	Hooks []string
}

// HarmConfigs are the configurations of the iperf3 runs, one veth each:
// nothing, the plugin at its defaults plus egress (the goal), a bare
// program at the same hooks (what the hooks cost alone), and the two native
// XDP ones that show why the default on a veth is TC.
var HarmConfigs = []HarmConfig{
	{Name: "nothing attached"},
	{Name: `plugin defaults + directions = ["ingress", "egress"]`, Options: `directions = ["ingress", "egress"]`,
		Hooks: []string{hookTCXIngress, hookTCXEgress}},
	{Name: "bare SCHED_CLS at tcx ingress and egress", BareTCX: true, Hooks: []string{hookTCXIngress, hookTCXEgress}},
	{Name: "bare XDP_PASS, native", BareXDP: true, Hooks: []string{hookXDP}},
	{Name: `plugin ingress_hook = "xdp", xdp_mode = "native", both directions`,
		Options: "directions = [\"ingress\", \"egress\"]\n  ingress_hook = \"xdp\"\n  xdp_mode = \"native\"",
		Hooks:   []string{hookXDP, hookTCXEgress}},
}

// harmGoal is the least share of the throughput with nothing attached
// that the plugin at its defaults must leave, TCP and UDP alike.
const harmGoal = 0.95

// Protocols of the iperf3 runs.
var harmProtocols = []string{"TCP", "UDP"}

// HarmResult is the iperf3 part: bits per second received, by protocol
// and configuration, one per run.
type HarmResult struct {
	Runs    int
	Args    []string // the iperf3 client's length arguments
	Version string   // iperf3 -v, first line
	BPS     map[string][]Sample
}

// RunHarm runs iperf3 over one veth per configuration between two new
// namespaces, the configurations attached at once on both ends of their
// veth (the plugin as the execd binary bin, one in each namespace), and
// measures each configuration runs times per protocol, alternating: run
// i of every configuration, then run i+1. Every process it starts is
// stopped and every namespace removed, also when it fails.
func RunHarm(t testing.TB, bin string, runs int, args []string) (*HarmResult, error) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		testnet.SkipOrFail(t, "the throughput runs need iperf3 (Debian package iperf3): %v", err)
	}
	p := testnet.NewPair(t, testnet.Options{})
	n := len(HarmConfigs)
	recv := p.AddVeths(t, "xhs", "xhr", n)
	addrs := make([]string, n)
	for i := range n {
		// 198.51.100.0/24 in /30s: .4i+1 sender, .4i+2 receiver.
		addrs[i] = fmt.Sprintf("198.51.100.%d", 4*i+2)
		testnet.MustIP(t, "-n", p.Sender, "addr", "add", fmt.Sprintf("198.51.100.%d/30", 4*i+1), "dev", fmt.Sprintf("xhs%d", i))
		testnet.MustIP(t, "-n", p.Receiver, "addr", "add", addrs[i]+"/30", "dev", recv[i])
	}
	res := &HarmResult{Runs: runs, Args: args, Version: iperfVersion(), BPS: map[string][]Sample{}}
	for _, proto := range harmProtocols {
		res.BPS[proto] = make([]Sample, n)
	}
	if err := startIperfServer(t, p.Receiver); err != nil {
		return nil, err
	}
	var stops []func() error
	defer func() {
		for _, stop := range stops {
			if err := stop(); err != nil {
				t.Errorf("throughput clean-up: %v", err)
			}
		}
	}()
	for i, cfg := range HarmConfigs {
		ends := [2]struct{ ns, dev string }{{p.Sender, fmt.Sprintf("xhs%d", i)}, {p.Receiver, recv[i]}}
		for _, e := range ends {
			stop, err := harmAttach(t, bin, cfg, e.ns, e.dev)
			if err != nil {
				return nil, fmt.Errorf("%s on %s: %w", cfg.Name, e.dev, err)
			}
			stops = append(stops, stop)
		}
	}
	for run := range runs {
		for _, proto := range harmProtocols {
			for k := range n {
				i := (k + run) % n // each run starts with another configuration
				bps, err := iperfRun(p.Sender, addrs[i], proto, args)
				if err != nil {
					return nil, fmt.Errorf("%s, %s, run %d: %w", HarmConfigs[i].Name, proto, run+1, err)
				}
				res.BPS[proto][i] = append(res.BPS[proto][i], bps)
			}
		}
	}
	for i, cfg := range HarmConfigs {
		// Still attached where they were put after every run.
		for _, e := range [2]struct{ ns, dev string }{{p.Sender, fmt.Sprintf("xhs%d", i)}, {p.Receiver, recv[i]}} {
			if err := checkHooks(e.ns, []string{e.dev}, cfg.Hooks...); err != nil {
				return nil, fmt.Errorf("%s after the runs: %w", cfg.Name, err)
			}
		}
	}
	return res, nil
}

// harmAttach puts cfg on dev in ns and returns how to take it off again
// (which checks that nothing is left).
func harmAttach(t testing.TB, bin string, cfg HarmConfig, ns, dev string) (func() error, error) {
	switch {
	case cfg.BareXDP, cfg.BareTCX:
		return harmAttachBare(cfg, ns, dev)
	case cfg.Options != "":
		conf := fmt.Sprintf("[[inputs.xdp_udp_ports]]\n  interfaces = [%q]\n  %s\n", dev, cfg.Options)
		e, err := startExecd(t, bin, ns, conf)
		if err != nil {
			return nil, err
		}
		if _, err := e.waitHooks(ns, []string{dev}, cfg.Hooks...); err != nil {
			return nil, e.fail(err)
		}
		return func() error {
			if err := e.stop(); err != nil {
				return fmt.Errorf("stopping the binary on %s: %w; stderr:\n%s", dev, err, e.stderr.String())
			}
			return checkHooks(ns, []string{dev})
		}, nil
	}
	return func() error { return nil }, nil
}

// harmAttachBare attaches cfg's bare program(s) to dev in ns.
func harmAttachBare(cfg HarmConfig, ns, dev string) (func() error, error) {
	idx, err := testnet.LinkIndex(ns, dev)
	if err != nil {
		return nil, err
	}
	load := func() (*ebpf.Program, error) { return bareProgram(0) }
	if cfg.BareTCX {
		load = bareTCProgram
	}
	prog, err := load()
	if err != nil {
		return nil, err
	}
	var links []link.Link
	detach := func() error {
		errs := []error{}
		for _, l := range links {
			errs = append(errs, l.Close())
		}
		return errors.Join(append(errs, prog.Close())...)
	}
	err = testnet.Do(ns, func() error {
		if cfg.BareXDP {
			l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: idx, Flags: link.XDPDriverMode})
			if err == nil {
				links = append(links, l)
			}
			return err
		}
		for _, at := range tcxAttach {
			l, err := link.AttachTCX(link.TCXOptions{Interface: idx, Program: prog, Attach: at, Anchor: link.Head()})
			if err != nil {
				return err
			}
			links = append(links, l)
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("attaching the bare program: %w", err), detach())
	}
	return func() error { return errors.Join(detach(), checkHooks(ns, []string{dev})) }, nil
}

// startIperfServer starts `iperf3 -s` in ns, waits until it listens and
// kills it at cleanup.
func startIperfServer(t testing.TB, ns string) error {
	cmd := testnet.Command(ns, "iperf3", "-s", "--forceflush")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting iperf3 -s: %w", err)
	}
	done := make(chan struct{})
	// ip netns exec execs iperf3: the pid is the server's.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	})
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "Server listening") {
				said = true
				close(listening)
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-listening:
		return nil
	case <-done:
		return fmt.Errorf("iperf3 -s exited: %s", stderr.String())
	case <-time.After(10 * time.Second):
		return errors.New("iperf3 -s not listening after 10 s")
	}
}

// iperfResult is what iperf3 -J says, as far as it is read here.
type iperfResult struct {
	Error string `json:"error"`
	End   struct {
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

// iperfRun runs one iperf3 client in ns to addr and returns the bits per
// second the server received. UDP is sent as fast as it goes (-b 0). A
// server still busy with the previous test is retried.
func iperfRun(ns, addr, proto string, args []string) (float64, error) {
	argv := append([]string{"-c", addr, "-J", "--connect-timeout", "3000"}, args...)
	if runtime.NumCPU() > 1 {
		// Client (and with it, on a veth, the receive path in softirq) on
		// CPU 0, server on CPU 1: left to the scheduler, UDP runs took
		// either of two throughputs a factor of 3 apart, as both landed
		// on one CPU or not.
		argv = append(argv, "-A", "0,1")
	}
	if proto == "UDP" {
		argv = append(argv, "-u", "-b", "0")
	}
	var last error
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, "iperf3"}, argv...)...)
		out, err := cmd.Output()
		cancel()
		var r iperfResult
		if jerr := json.Unmarshal(out, &r); jerr != nil {
			return 0, fmt.Errorf("iperf3 %s: %v; output %q: %w", strings.Join(argv, " "), err, out, jerr)
		}
		if r.Error == "" && err == nil && r.End.SumReceived.BitsPerSecond > 0 {
			return r.End.SumReceived.BitsPerSecond, nil
		}
		last = fmt.Errorf("iperf3 %s: %v: %s", strings.Join(argv, " "), err, r.Error)
		if !strings.Contains(r.Error, "busy") {
			return 0, last
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, last
}

func iperfVersion() string {
	out, err := exec.Command("iperf3", "-v").Output()
	if err != nil {
		return "iperf3 (version unknown)"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// Ratios are configuration i's throughput over that of nothing attached
// in the same round, one per round: runs of one round follow one another
// within seconds, so a host whose load changes between rounds moves both
// alike. The goal is judged on their median.
func (r *HarmResult) Ratios(proto string, i int) Sample {
	s, none := r.BPS[proto][i], r.BPS[proto][0]
	var ratios Sample
	for run := range min(len(s), len(none)) {
		if none[run] > 0 {
			ratios = append(ratios, s[run]/none[run])
		}
	}
	return ratios
}

// TableRows turns the iperf3 runs into table rows: every configuration
// against nothing attached, the defaults held to harmGoal.
func (r *HarmResult) TableRows() []Row {
	var rows []Row
	gbit := func(s Sample) string {
		return fmt.Sprintf("%.2f Gbit/s (%.2f–%.2f)", s.Median()/1e9, s.Min()/1e9, s.Max()/1e9)
	}
	for _, proto := range harmProtocols {
		none := r.BPS[proto][0]
		for i := 1; i < len(HarmConfigs); i++ {
			s := r.BPS[proto][i]
			ratios := r.Ratios(proto, i)
			ratio := ratios.Median()
			row := Row{
				Part:     "2 throughput",
				Case:     fmt.Sprintf("iperf3 %s over a veth, both ends: %s vs nothing attached (%d runs)", proto, HarmConfigs[i].Name, len(s)),
				Value:    gbit(s),
				Baseline: gbit(none),
				Ratio:    fmt.Sprintf("%.1f %% (%.0f–%.0f)", 100*ratio, 100*ratios.Min(), 100*ratios.Max()),
			}
			if i == 1 {
				row.Goal = fmt.Sprintf("≥ %.0f %%", 100*harmGoal)
				row.Met = verdict(ratio >= harmGoal)
			}
			rows = append(rows, row)
		}
	}
	return rows
}
