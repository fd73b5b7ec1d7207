//go:build linux

package bench

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
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

// floodBatch is how many frames one sendmmsg call sends.
const floodBatch = 64

// FloodConfig is what a veth runs during the flood: a program at XDP
// (receiving end) or at tcx, ingress on the receiving end or egress on
// the sending one.
type FloodConfig struct {
	Name string
	Ours bool          // our program (else the bare one of the hook), unless None
	None bool          // no program at all
	TC   bool          // at tcx (else XDP)
	Mode bpf.Mode      // XDP: native or generic
	Dir  bpf.Direction // TC: ingress or egress
}

// FloodConfigs are the configurations of part 2, one veth each.
var FloodConfigs = []FloodConfig{
	{Name: "no program", None: true},
	{Name: "bare native", Mode: bpf.ModeNative},
	{Name: "ours native", Ours: true, Mode: bpf.ModeNative},
	{Name: "bare generic", Mode: bpf.ModeGeneric},
	{Name: "ours generic", Ours: true, Mode: bpf.ModeGeneric},
	{Name: "bare tcx ingress", TC: true, Dir: bpf.Ingress},
	{Name: "ours tcx ingress", Ours: true, TC: true, Dir: bpf.Ingress},
	{Name: "bare tcx egress", TC: true, Dir: bpf.Egress},
	{Name: "ours tcx egress", Ours: true, TC: true, Dir: bpf.Egress},
}

// floodPairs are the (ours, bare) configurations the goals compare.
var floodPairs = [][2]string{
	{"ours native", "bare native"},
	{"ours generic", "bare generic"},
	{"ours tcx ingress", "bare tcx ingress"},
	{"ours tcx egress", "bare tcx egress"},
}

// mmsghdr is struct mmsghdr (x/sys/unix has Msghdr but no Mmsghdr).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// floodLane is one configuration's veth: an AF_PACKET socket on the
// sender's end with a batch of frames to the receiver's end, the program
// attached there and what was sent and spent on it.
type floodLane struct {
	Total FloodTotal

	sender, receiver string // the veth's ends
	fd               int
	msgs             []mmsghdr
	iovs             []unix.Iovec
	bufs             [][]byte
	addr             unix.RawSockaddrLinklayer
	counters         *bpf.Counters // ours only
	detach           func() error
	full             uint64   // whole batches sent
	partial          []uint64 // message i sent in a partial batch
}

// FloodTotal is what the flood did to one configuration.
type FloodTotal struct {
	Config   FloodConfig
	Sent     uint64
	PerPort  map[uint16]uint64
	Wall     time.Duration // wall time of this configuration's batches
	CPU      time.Duration // the sending thread's CPU time in them
	Counted  uint64        // frames our program counted to the flood's ports
	CountErr error         // set when a count differs from what was sent
}

// PPS is packets per second of wall time.
func (t *FloodTotal) PPS() float64 { return float64(t.Sent) / t.Wall.Seconds() }

// PerCPU is packets per second of CPU time.
func (t *FloodTotal) PerCPU() float64 { return float64(t.Sent) / t.CPU.Seconds() }

// FloodResult is part 2.
type FloodResult struct {
	PerConfig time.Duration // flood time each configuration got
	Totals    []*FloodTotal // in FloodConfigs order
	SoftIRQ   time.Duration // ksoftirqd's CPU time during the flood
	Batches   uint64        // sendmmsg calls per configuration
}

// RunFlood floods one veth per configuration, all attached at once, from
// one thread in the sender namespace that sends one batch to each veth in
// turn until every configuration has had perConfig of flooding. Batch by
// batch interleaving puts any noise of the host on every configuration
// alike. After the flood our counts to every port must equal what was sent.
func RunFlood(t testing.TB, l *bpf.Loader, base *Baselines, perConfig time.Duration) (*FloodResult, error) {
	p := testnet.NewPair(t, testnet.Options{})
	recv := p.AddVeths(t, "xfs", "xfr", len(FloodConfigs))
	res := &FloodResult{PerConfig: perConfig}
	var lanes []*floodLane
	defer func() {
		for _, ln := range lanes {
			if err := ln.close(); err != nil {
				t.Errorf("flood clean-up: %v", err)
			}
		}
	}()
	for i, cfg := range FloodConfigs {
		ln, err := newLane(p, fmt.Sprintf("xfs%d", i), recv[i])
		if err != nil {
			return nil, err
		}
		lanes = append(lanes, ln)
		ln.Total = FloodTotal{Config: cfg, PerPort: map[uint16]uint64{}}
		if err := ln.attach(l, base, p); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Name, err)
		}
		res.Totals = append(res.Totals, &ln.Total)
	}
	before := make([]bpf.Snapshot, len(lanes))
	for i, ln := range lanes {
		if ln.counters != nil {
			ln.counters.Snapshot(&before[i])
		}
	}
	soft, err := flood(lanes, perConfig*time.Duration(len(lanes)))
	if err != nil {
		return nil, err
	}
	res.SoftIRQ = soft
	res.Batches = lanes[0].full
	for i, ln := range lanes {
		ln.finish()
		if ln.counters != nil {
			ln.check(before[i], settled(ln.counters))
		}
	}
	return res, nil
}

func newLane(p *testnet.Pair, senderIf, receiverIf string) (*floodLane, error) {
	src, idx, err := linkAddr(p.Sender, senderIf)
	if err != nil {
		return nil, err
	}
	dst, _, err := linkAddr(p.Receiver, receiverIf)
	if err != nil {
		return nil, err
	}
	if err := addQdisc(p.Sender, senderIf); err != nil {
		return nil, err
	}
	ln := &floodLane{sender: senderIf, receiver: receiverIf, fd: -1, detach: func() error { return nil }, partial: make([]uint64, floodBatch)}
	// The socket is made in the sender namespace; it stays bound there.
	err = p.InSender(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		ln.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	ln.addr = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Ifindex: int32(idx), Halen: 6}
	copy(ln.addr.Addr[:], dst)
	ln.msgs = make([]mmsghdr, floodBatch)
	ln.iovs = make([]unix.Iovec, floodBatch)
	for i := range floodBatch {
		frame := frames.IPv4UDP(FloodFrameLen, frames.PortEphemeral, FloodPorts[i%len(FloodPorts)])
		copy(frame[0:6], dst) // addressed to the receiving veth: up the whole stack
		copy(frame[6:12], src)
		ln.bufs = append(ln.bufs, frame)
		ln.iovs[i].Base = &frame[0]
		ln.iovs[i].SetLen(len(frame))
		ln.msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&ln.addr))
		ln.msgs[i].hdr.Namelen = unix.SizeofSockaddrLinklayer
		ln.msgs[i].hdr.Iov = &ln.iovs[i]
		ln.msgs[i].hdr.SetIovlen(1)
	}
	return ln, nil
}

func linkAddr(ns, dev string) (net.HardwareAddr, int, error) {
	var mac net.HardwareAddr
	var idx int
	err := testnet.Do(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("%s in netns %s: %w", dev, ns, err)
		}
		mac, idx = l.Attrs().HardwareAddr, l.Attrs().Index
		return nil
	})
	return mac, idx, err
}

// attach puts the lane's program on its veth: the receiving end, or for
// egress the sending one.
func (ln *floodLane) attach(l *bpf.Loader, base *Baselines, p *testnet.Pair) error {
	cfg := ln.Total.Config
	if cfg.None {
		return nil
	}
	ns, dev := p.Receiver, ln.receiver
	if cfg.TC && cfg.Dir == bpf.Egress {
		ns, dev = p.Sender, ln.sender
	}
	_, idx, err := linkAddr(ns, dev)
	if err != nil {
		return err
	}
	if cfg.Ours {
		c, err := l.Load(bpf.Config{})
		if err != nil {
			return err
		}
		ln.counters = c
		var a *bpf.Attachment
		err = testnet.Do(ns, func() (err error) {
			a, err = c.Attach(bpf.Target{Ifindex: idx, Dir: cfg.Dir, XDP: !cfg.TC, Mode: cfg.Mode})
			return err
		})
		if err != nil {
			return err
		}
		ln.detach = a.Close
		if cfg.TC && a.Hook != bpf.HookTCX {
			return fmt.Errorf("attached at %s, want tcx", a.Hook)
		}
		return nil
	}
	var lk link.Link
	err = testnet.Do(ns, func() (err error) {
		if cfg.TC {
			lk, err = link.AttachTCX(link.TCXOptions{Interface: idx, Program: base.BareTC, Attach: tcxAttach[cfg.Dir], Anchor: link.Head()})
			return err
		}
		flags := link.XDPDriverMode
		if cfg.Mode == bpf.ModeGeneric {
			flags = link.XDPGenericMode
		}
		lk, err = link.AttachXDP(link.XDPOptions{Program: base.Bare, Interface: idx, Flags: flags})
		return err
	})
	if err != nil {
		return fmt.Errorf("attaching the bare program: %w", err)
	}
	ln.detach = lk.Close
	return nil
}

// tcxAttach is the tcx attach type of each direction.
var tcxAttach = map[bpf.Direction]ebpf.AttachType{bpf.Ingress: ebpf.AttachTCXIngress, bpf.Egress: ebpf.AttachTCXEgress}

func (ln *floodLane) close() error {
	errs := []error{ln.detach()}
	if ln.counters != nil {
		errs = append(errs, ln.counters.Close())
	}
	if ln.fd >= 0 {
		errs = append(errs, unix.Close(ln.fd))
	}
	return errors.Join(errs...)
}

// flood sends one batch to each lane in turn for d on a locked thread,
// charging each batch's wall and CPU time to its lane, and returns the CPU
// time ksoftirqd used meanwhile. On a veth everything happens on the
// sending thread: the send, the veth transmit and, in softirq as the
// thread re-enables bottom halves, the receiver's NAPI or backlog, XDP and
// the stack - unless softirqs are deferred to ksoftirqd.
func flood(lanes []*floodLane, d time.Duration) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	soft0, err := ksoftirqdCPU()
	if err != nil {
		return 0, err
	}
	end := time.Now().Add(d)
	cpu, wall := threadCPU(), time.Now()
	for wall.Before(end) {
		for _, ln := range lanes {
			n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(ln.fd), uintptr(unsafe.Pointer(&ln.msgs[0])), floodBatch, 0, 0, 0)
			cpu1, wall1 := threadCPU(), time.Now()
			ln.Total.CPU += cpu1 - cpu
			ln.Total.Wall += wall1.Sub(wall)
			cpu, wall = cpu1, wall1
			switch {
			case errno == unix.EINTR || errno == unix.EAGAIN || errno == unix.ENOBUFS:
			case errno != 0:
				return 0, fmt.Errorf("sendmmsg: %w", errno)
			case n == floodBatch:
				ln.full++
			default:
				for i := range int(n) {
					ln.partial[i]++
				}
			}
		}
	}
	soft1, err := ksoftirqdCPU()
	return soft1 - soft0, err
}

// finish adds up what the lane sent, per port.
func (ln *floodLane) finish() {
	for i := range floodBatch {
		n := ln.full + ln.partial[i]
		ln.Total.PerPort[FloodPorts[i%len(FloodPorts)]] += n
		ln.Total.Sent += n
	}
}

// check compares our counts to each flood port with what was sent.
func (ln *floodLane) check(before, after bpf.Snapshot) {
	for port, sent := range ln.Total.PerPort {
		got := portCount(after.Destination, port).Sub(portCount(before.Destination, port))
		want := bpf.Counter{Packets: sent, Bytes: sent * FloodFrameLen}
		ln.Total.Counted += got.Packets
		if got != want && ln.Total.CountErr == nil {
			ln.Total.CountErr = fmt.Errorf("port %d counted %+v, sent %+v", port, got, want)
		}
	}
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

// TableRows turns part 2 into table rows.
func (r *FloodResult) TableRows() []Row {
	by := map[string]*FloodTotal{}
	for _, t := range r.Totals {
		by[t.Config.Name] = t
	}
	val := func(t *FloodTotal) string {
		return fmt.Sprintf("%.0f kpps/CPU-s (wall %.0f kpps)", t.PerCPU()/1e3, t.PPS()/1e3)
	}
	var rows []Row
	none := by["no program"]
	for _, pair := range floodPairs {
		ours, bare := by[pair[0]], by[pair[1]]
		rows = append(rows,
			Row{Part: "2 throughput", Case: fmt.Sprintf("flood: %s vs no program (%s each)", bare.Config.Name, r.PerConfig),
				Value: val(bare), Baseline: val(none), Ratio: pct(bare.PerCPU(), none.PerCPU())},
			Row{Part: "2 throughput", Case: fmt.Sprintf("flood: %s vs %s (%s each)", ours.Config.Name, bare.Config.Name, r.PerConfig),
				Value: val(ours), Baseline: val(bare), Ratio: pct(ours.PerCPU(), bare.PerCPU()),
				Goal: "≥ 98 %", Met: verdict(ours.PerCPU() >= 0.98*bare.PerCPU())},
		)
		cnt := Row{Part: "2 throughput", Case: fmt.Sprintf("flood: %s: counted = sent, every port", ours.Config.Name),
			Value: fmt.Sprintf("%d counted", ours.Counted), Baseline: fmt.Sprintf("%d sent", ours.Sent),
			Goal: "exact", Met: verdict(ours.CountErr == nil && ours.Counted == ours.Sent)}
		if ours.CountErr != nil {
			cnt.Value += " (" + ours.CountErr.Error() + ")"
		}
		rows = append(rows, cnt)
	}
	return rows
}

// settled returns c's snapshot once its frame count stops changing.
func settled(c *bpf.Counters) bpf.Snapshot {
	var s bpf.Snapshot
	testnet.WaitStable(func() uint64 { c.Snapshot(&s); return s.Summary.Packets })
	return s
}
