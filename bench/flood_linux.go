//go:build linux

package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/frames"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// FloodPorts are the destination ports of the flood, taken in turn.
var FloodPorts = []uint16{53, 123, 443, 4789, 5060, 8125, 9999, 51820}

// FloodFrameLen is the size of every flood frame: minimum Ethernet.
const FloodFrameLen = 64

// mmsghdr is struct mmsghdr (x/sys/unix has Msghdr but no Mmsghdr).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// flooder sends IPv4/UDP frames out of the sender's veth with AF_PACKET
// sendmmsg, as fast as one thread can. AF_PACKET goes through the veth's
// qdisc (no PACKET_QDISC_BYPASS): with a qdisc on the sender, a full
// receive ring stops the queue instead of dropping (veth backpressure).
type flooder struct {
	fd    int
	msgs  []mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	ports []uint16 // destination port of message i
	addr  unix.RawSockaddrLinklayer
	batch int
}

const floodBatch = 64

func newFlooder(p *testnet.Pair) (*flooder, error) {
	idx, err := testnet.LinkIndex(p.Sender, p.SenderIf)
	if err != nil {
		return nil, err
	}
	f := &flooder{batch: floodBatch}
	// The socket is made in the sender namespace; it stays bound there.
	err = p.InSender(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		f.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	f.addr = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Ifindex: int32(idx), Halen: 6}
	copy(f.addr.Addr[:], p.ReceiverMAC)
	f.msgs = make([]mmsghdr, f.batch)
	f.iovs = make([]unix.Iovec, f.batch)
	for i := range f.batch {
		frame := frames.IPv4UDP(FloodFrameLen, frames.PortEphemeral, FloodPorts[i%len(FloodPorts)])
		copy(frame[0:6], p.ReceiverMAC) // addressed to the receiver: up the whole stack
		copy(frame[6:12], p.SenderMAC)
		f.bufs = append(f.bufs, frame)
		f.ports = append(f.ports, FloodPorts[i%len(FloodPorts)])
		f.iovs[i].Base = &frame[0]
		f.iovs[i].SetLen(len(frame))
		f.msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&f.addr))
		f.msgs[i].hdr.Namelen = unix.SizeofSockaddrLinklayer
		f.msgs[i].hdr.Iov = &f.iovs[i]
		f.msgs[i].hdr.SetIovlen(1)
	}
	return f, nil
}

func (f *flooder) Close() error { return unix.Close(f.fd) }

// floodRun is what one flood did.
type floodRun struct {
	Sent    uint64            // frames the kernel took
	PerPort map[uint16]uint64 // of which to each port
	Wall    time.Duration
	CPU     time.Duration // the sending thread's CPU time plus ksoftirqd's
}

// flood sends for d on a locked thread and returns what it sent and the
// CPU it took. On a veth everything happens on the sending thread: the
// send, the veth transmit and, in softirq context as the thread re-enables
// bottom halves, the receiver's NAPI or backlog, XDP and the stack. Its
// CPU time (plus ksoftirqd's, for softirq work deferred there) is the cost
// of the flood whatever else the host runs.
func (f *flooder) flood(d time.Duration) (floodRun, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var stop atomic.Bool
	t := time.AfterFunc(d, func() { stop.Store(true) })
	defer t.Stop()
	var full uint64                    // whole batches sent
	partial := make([]uint64, f.batch) // message i sent in a partial batch
	soft0, err := ksoftirqdCPU()
	if err != nil {
		return floodRun{}, err
	}
	cpu0, start := threadCPU(), time.Now()
	for !stop.Load() {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(f.fd), uintptr(unsafe.Pointer(&f.msgs[0])), uintptr(f.batch), 0, 0, 0)
		if errno != 0 {
			if errno == unix.EINTR || errno == unix.EAGAIN || errno == unix.ENOBUFS {
				continue
			}
			return floodRun{}, fmt.Errorf("sendmmsg: %w", errno)
		}
		if int(n) == f.batch {
			full++
			continue
		}
		for i := range int(n) {
			partial[i]++
		}
	}
	r := floodRun{Wall: time.Since(start), CPU: threadCPU() - cpu0, PerPort: map[uint16]uint64{}}
	for i := range f.batch {
		n := full + partial[i]
		r.PerPort[f.ports[i]] += n
		r.Sent += n
	}
	soft1, err := ksoftirqdCPU()
	if err != nil {
		return floodRun{}, err
	}
	r.CPU += soft1 - soft0
	return r, nil
}

// linkStats reads dev's counters in namespace ns.
func linkStats(ns, dev string) (*netlink.LinkStatistics, error) {
	var st *netlink.LinkStatistics
	err := testnet.Do(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("%s in netns %s: %w", dev, ns, err)
		}
		if l.Attrs().Statistics == nil {
			return errors.New("no link statistics for " + dev)
		}
		s := *l.Attrs().Statistics
		st = &s
		return nil
	})
	return st, err
}

// ksoftirqdCPU is the CPU time all ksoftirqd threads have used
// (/proc/PID/schedstat, in ns).
func ksoftirqdCPU() (time.Duration, error) {
	comms, err := filepath.Glob("/proc/[0-9]*/comm")
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil || !strings.HasPrefix(string(b), "ksoftirqd/") {
			continue // gone, or not ksoftirqd
		}
		s, err := os.ReadFile(filepath.Join(filepath.Dir(c), "schedstat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(s))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %s/schedstat: %w", filepath.Dir(c), err)
		}
		sum += time.Duration(v)
	}
	return sum, nil
}

// FloodConfig is what the receiver runs during a flood.
type FloodConfig struct {
	Name string
	Ours bool     // our program (else the bare one), unless None
	None bool     // no program at all
	Mode bpf.Mode // native or generic
}

// FloodConfigs are the configurations of part 2.
var FloodConfigs = []FloodConfig{
	{Name: "no program", None: true},
	{Name: "bare native", Mode: bpf.ModeNative},
	{Name: "ours native", Ours: true, Mode: bpf.ModeNative},
	{Name: "bare generic", Mode: bpf.ModeGeneric},
	{Name: "ours generic", Ours: true, Mode: bpf.ModeGeneric},
}

// FloodTotal is every segment of one configuration added up.
type FloodTotal struct {
	Config   FloodConfig
	Sent     uint64
	Wall     time.Duration
	CPU      time.Duration
	Segments Sample // packets per CPU second of each segment
	Counted  uint64 // frames our program counted to the flood's ports
	CountErr error  // set when a count differs from what was sent
}

// PPS is packets per second of wall time.
func (t *FloodTotal) PPS() float64 { return float64(t.Sent) / t.Wall.Seconds() }

// PerCPU is packets per second of CPU time.
func (t *FloodTotal) PerCPU() float64 { return float64(t.Sent) / t.CPU.Seconds() }

// FloodResult is part 2.
type FloodResult struct {
	Segment time.Duration
	Rounds  int
	Totals  []*FloodTotal // in FloodConfigs order
}

// RunFlood floods a fresh veth pair from the sender namespace, rounds
// times segment long per configuration, the configurations interleaved
// (and their order rotated each round) so that the host's noise spreads
// over all of them. Our program is loaded once per mode; after each
// segment its counts to every flood port must equal what was sent.
func RunFlood(t testing.TB, l *bpf.Loader, base *Baselines, segment time.Duration, rounds int) (*FloodResult, error) {
	p := testnet.NewPair(t, testnet.Options{})
	if err := addQdisc(p.Sender, p.SenderIf); err != nil {
		return nil, err
	}
	f, err := newFlooder(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res := &FloodResult{Segment: segment, Rounds: rounds}
	ours := map[bpf.Mode]*bpf.Counters{}
	defer func() {
		for _, c := range ours {
			c.Close()
		}
	}()
	for _, cfg := range FloodConfigs {
		res.Totals = append(res.Totals, &FloodTotal{Config: cfg})
		if cfg.Ours {
			c, err := l.Load(bpf.Config{})
			if err != nil {
				return nil, err
			}
			ours[cfg.Mode] = c
		}
	}
	for round := range rounds {
		for k := range FloodConfigs {
			tot := res.Totals[(k+round)%len(FloodConfigs)]
			if err := floodSegment(p, f, base, ours[tot.Config.Mode], tot, segment); err != nil {
				return nil, fmt.Errorf("%s: %w", tot.Config.Name, err)
			}
		}
	}
	return res, nil
}

func floodSegment(p *testnet.Pair, f *flooder, base *Baselines, c *bpf.Counters, tot *FloodTotal, d time.Duration) error {
	cfg := tot.Config
	var detach func() error
	switch {
	case cfg.None:
		detach = func() error { return nil }
	case cfg.Ours:
		var a *bpf.Attachment
		err := p.InReceiver(func() (err error) {
			a, err = c.Attach(p.ReceiverIndex, cfg.Mode)
			return err
		})
		if err != nil {
			return err
		}
		detach = a.Close
	default:
		flags := link.XDPDriverMode
		if cfg.Mode == bpf.ModeGeneric {
			flags = link.XDPGenericMode
		}
		var lk link.Link
		err := p.InReceiver(func() (err error) {
			lk, err = link.AttachXDP(link.XDPOptions{Program: base.Bare, Interface: p.ReceiverIndex, Flags: flags})
			return err
		})
		if err != nil {
			return fmt.Errorf("attaching the bare program: %w", err)
		}
		detach = lk.Close
	}
	var before bpf.Snapshot
	if c != nil {
		c.Snapshot(&before)
	}
	run, err := f.flood(d)
	if err != nil {
		detach()
		return err
	}
	var after bpf.Snapshot
	if c != nil {
		after = settle(c)
	}
	if err := detach(); err != nil {
		return fmt.Errorf("detaching: %w", err)
	}
	tot.Sent += run.Sent
	tot.Wall += run.Wall
	tot.CPU += run.CPU
	tot.Segments = append(tot.Segments, float64(run.Sent)/run.CPU.Seconds())
	if c == nil {
		return nil
	}
	for port, sent := range run.PerPort {
		got := portCount(after.Destination, port).Sub(portCount(before.Destination, port))
		want := bpf.Counter{Packets: sent, Bytes: sent * FloodFrameLen}
		tot.Counted += got.Packets
		if got != want && tot.CountErr == nil {
			tot.CountErr = fmt.Errorf("port %d counted %+v, sent %+v", port, got, want)
		}
	}
	return nil
}

// settle snapshots c until two snapshots 20 ms apart agree (the last
// frames of a flood may still be on their way).
func settle(c *bpf.Counters) bpf.Snapshot {
	var s bpf.Snapshot
	last := ^uint64(0)
	for range 50 {
		c.Snapshot(&s)
		if s.Summary.Packets == last {
			break
		}
		last = s.Summary.Packets
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func portCount(s []bpf.PortCount, port uint16) counter {
	for _, pc := range s {
		if pc.Port == port {
			return counter(pc.Counter)
		}
	}
	return counter{}
}

type counter bpf.Counter

func (c counter) Sub(o counter) bpf.Counter {
	return bpf.Counter{Packets: c.Packets - o.Packets, Bytes: c.Bytes - o.Bytes}
}

// addQdisc puts a pfifo qdisc on dev: veth's default is noqueue, and only
// with a queue does a full receive ring push back on the sender instead of
// dropping.
func addQdisc(ns, dev string) error {
	return testnet.Do(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("%s in netns %s: %w", dev, ns, err)
		}
		q := &netlink.GenericQdisc{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			QdiscType:  "pfifo",
		}
		if err := netlink.QdiscReplace(q); err != nil {
			return fmt.Errorf("adding a pfifo qdisc to %s: %w", dev, err)
		}
		return nil
	})
}

// TableRows turns part 2 into table rows.
func (r *FloodResult) TableRows() []Row {
	by := map[string]*FloodTotal{}
	for _, t := range r.Totals {
		by[t.Config.Name] = t
	}
	val := func(t *FloodTotal) string {
		return fmt.Sprintf("%.0f kpps/CPU-s (wall %.0f kpps)", t.PerCPU()/1e3, t.PPS()/1e3)
	}
	flood := fmt.Sprintf("%d× %s", r.Rounds, r.Segment)
	var rows []Row
	none := by["no program"]
	for _, mode := range []string{"native", "generic"} {
		bare, ours := by["bare "+mode], by["ours "+mode]
		rows = append(rows,
			Row{Part: "2 throughput", Case: fmt.Sprintf("bare %s vs no program (%s)", mode, flood),
				Value: val(bare), Baseline: val(none), Ratio: pct(bare.PerCPU(), none.PerCPU())},
			Row{Part: "2 throughput", Case: fmt.Sprintf("ours %s vs bare %s (%s)", mode, mode, flood),
				Value: val(ours), Baseline: val(bare), Ratio: pct(ours.PerCPU(), bare.PerCPU()),
				Goal: "≥ 98 %", Met: verdict(ours.PerCPU() >= 0.98*bare.PerCPU())},
		)
		cnt := Row{Part: "2 throughput", Case: fmt.Sprintf("ours %s: counted = sent, every port", mode),
			Value: fmt.Sprintf("%d counted", ours.Counted), Baseline: fmt.Sprintf("%d sent", ours.Sent),
			Goal: "exact", Met: verdict(ours.CountErr == nil && ours.Counted == ours.Sent)}
		if ours.CountErr != nil {
			cnt.Value += " (" + ours.CountErr.Error() + ")"
		}
		rows = append(rows, cnt)
	}
	return rows
}
