//go:build linux

package bench

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/influxdata/telegraf/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	plugin "github.com/xdp-udp-ports/xdp_udp_ports/plugins/inputs/xdp_udp_ports"
)

// newPlugin returns an initialised plugin on interfaces, every other
// option at its default unless set changes it.
func newPlugin(interfaces []string, set ...func(*plugin.XDPUDPPorts)) (*plugin.XDPUDPPorts, error) {
	p := plugin.New()
	p.Interfaces = interfaces
	p.Log = testutil.Logger{Name: "inputs.xdp_udp_ports", Quiet: true}
	for _, f := range set {
		f(p)
	}
	if err := p.Init(); err != nil {
		return nil, err
	}
	return p, nil
}

// Hooks as testnet.Programs names them.
const (
	hookXDP        = "xdp"
	hookTCXIngress = "tcx/ingress"
	hookTCXEgress  = "tcx/egress"
	hookTCIngress  = "tc/ingress"
)

// defaultHooks are where the plugin at its defaults attaches on a veth:
// ingress_hook = "auto" picks TC, and tcx on this kernel.
var defaultHooks = []string{hookTCXIngress}

// checkHooks fails unless every interface in ns carries exactly one
// program at each of hooks and none anywhere else (no hooks: nothing
// attached at all, at any hook).
func checkHooks(ns string, ifaces []string, hooks ...string) error {
	want := slices.Sorted(slices.Values(hooks))
	for _, name := range ifaces {
		progs, err := testnet.Programs(ns, name)
		if err != nil {
			return err
		}
		got := make([]string, len(progs))
		for i, p := range progs {
			got[i] = p.Hook
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s: programs attached %v, want one at each of %v", name, progs, want)
		}
	}
	return nil
}

// sendFrames sends frames out of dev (in this process's namespace) with
// an AF_PACKET socket, in bursts the receiving veth's ring absorbs.
func sendFrames(dev string, fs [][]byte) error {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	addr := &unix.SockaddrLinklayer{Ifindex: l.Attrs().Index, Halen: 6}
	for i, f := range fs {
		if err := unix.Sendto(fd, f, 0, addr); err != nil {
			return fmt.Errorf("sending frame %d out of %s: %w", i, dev, err)
		}
		if (i+1)%64 == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	return nil
}

// GatherCase is the cost of one whole Gather (Snapshot of every interface
// and one metric per active port into Telegraf's testutil.Accumulator).
type GatherCase struct {
	Case    ReadCase
	Gather  Sample // ns
	Metrics int    // port metrics per Gather
}

// RunGather runs the plugin on new veths of pair p (this process must be
// in the receiver namespace: see testnet.RunInReceiver) with each case's
// active ports and times Gather. Each port gets exactly one 64-byte frame;
// the metrics must say so.
func RunGather(t testing.TB, p *testnet.Pair, cases []ReadCase, reps int) ([]GatherCase, error) {
	most := 0
	for _, c := range cases {
		most = max(most, c.Ifaces)
	}
	ifaces := p.AddVeths(t, "xgs", "xgr", most)
	senders := make([]string, most)
	for i := range senders {
		senders[i] = fmt.Sprintf("xgs%d", i)
	}
	var out []GatherCase
	for _, rc := range cases {
		g, err := gatherCase(p, ifaces[:rc.Ifaces], senders, rc, reps)
		if err != nil {
			return nil, fmt.Errorf("gather, %s: %w", rc, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func gatherCase(pair *testnet.Pair, ifaces, senders []string, rc ReadCase, reps int) (GatherCase, error) {
	g := GatherCase{Case: rc}
	p, err := newPlugin(ifaces)
	if err != nil {
		return g, err
	}
	if err := p.Start(&testutil.Accumulator{}); err != nil {
		return g, err
	}
	defer p.Stop()
	if err := checkHooks(pair.Receiver, ifaces, defaultHooks...); err != nil {
		return g, err
	}
	ports := activePorts(rc.Active)
	fs := make([][]byte, len(ports))
	for i, port := range ports {
		fs[i] = frames.IPv4UDP(64, frames.PortEphemeral, port)
	}
	for i := range ifaces {
		if err := pair.InSender(func() error { return sendFrames(senders[i], fs) }); err != nil {
			return g, err
		}
	}
	acc, err := gatherSettled(p)
	if err != nil {
		return g, err
	}
	if err := checkGather(acc, ifaces, ports, p.MaxPorts); err != nil {
		return g, err
	}
	for range reps {
		acc := &testutil.Accumulator{}
		start := time.Now()
		err := p.Gather(acc)
		d := time.Since(start)
		if err != nil {
			return g, err
		}
		g.Gather = append(g.Gather, nanos(d))
		g.Metrics = len(acc.Metrics) - len(ifaces) // less one summary metric per interface
	}
	return g, nil
}

// gatherSettled gathers until the summary packet counts stop changing.
func gatherSettled(p *plugin.XDPUDPPorts) (*testutil.Accumulator, error) {
	prev := int64(-1)
	for range 100 {
		acc := &testutil.Accumulator{}
		if err := p.Gather(acc); err != nil {
			return nil, err
		}
		if err := acc.FirstError(); err != nil {
			return nil, err
		}
		var total int64
		for _, m := range acc.GetTelegrafMetrics() {
			if m.Name() == "xdp_udp_ports_interface" {
				v, _ := m.GetField("udp_packets")
				total += v.(int64)
			}
		}
		if total == prev {
			return acc, nil
		}
		prev = total
		time.Sleep(20 * time.Millisecond)
	}
	return nil, errors.New("counters did not settle")
}

// checkGather: on every interface each of ports has had exactly one
// frame of 64 bytes: under max_ports, min(ports, maxPorts) of them have a
// series of their own with exactly that, and port="other" sums the rest
// (maxPorts 0: no limit, no other).
func checkGather(acc *testutil.Accumulator, ifaces []string, ports []uint16, maxPorts int) error {
	want := map[string]bool{}
	for _, p := range ports {
		want[strconv.Itoa(int(p))] = true
	}
	seated := len(ports)
	if maxPorts > 0 {
		seated = min(seated, maxPorts)
	}
	seen, other := map[string]int{}, map[string]int64{}
	for _, m := range acc.GetTelegrafMetrics() {
		if m.Name() != "xdp_udp_ports" {
			continue
		}
		ifname, _ := m.GetTag("interface")
		port, _ := m.GetTag("port")
		pk, _ := m.GetField("packets")
		by, _ := m.GetField("bytes")
		if port == "other" {
			n, _ := pk.(int64)
			if by != 64*n {
				return fmt.Errorf("%s port other: packets %v bytes %v, want 64 bytes per packet", ifname, pk, by)
			}
			other[ifname] = n
			continue
		}
		if !want[port] || pk != int64(1) || by != int64(64) {
			return fmt.Errorf("%s port %s: packets %v bytes %v, want one 64-byte frame on listed ports only", ifname, port, pk, by)
		}
		seen[ifname]++
	}
	for _, name := range ifaces {
		if seen[name] != seated || other[name] != int64(len(ports)-seated) {
			return fmt.Errorf("%s: %d port series and %d packets in other, want %d and %d (%d ports, max_ports %d)",
				name, seen[name], other[name], seated, len(ports)-seated, len(ports), maxPorts)
		}
	}
	return nil
}

// mapMemory sums the kernel memory (memlock, as map info and fdinfo
// report it) of every map prog uses.
func mapMemory(prog *ebpf.Program) (uint64, error) {
	info, err := prog.Info()
	if err != nil {
		return 0, err
	}
	ids, ok := info.MapIDs()
	if !ok {
		return 0, errors.New("the kernel does not report the program's map ids")
	}
	var sum uint64
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			return 0, err
		}
		mi, err := m.Info()
		m.Close()
		if err != nil {
			return 0, err
		}
		mem, ok := mi.Memlock()
		if !ok {
			return 0, errors.New("the kernel does not report map memlock")
		}
		sum += mem
	}
	return sum, nil
}
