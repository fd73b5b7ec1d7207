//go:build linux

package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// ProcMemory is what /proc/PID/status says of a process's resident memory.
type ProcMemory struct {
	RssAnon, RssFile uint64 // bytes
}

func procMemory(pid int) (ProcMemory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcMemory{}, err
	}
	defer f.Close()
	var m ProcMemory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch key {
		case "RssAnon":
			dst = &m.RssAnon
		case "RssFile":
			dst = &m.RssFile
		default:
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("parsing %s in /proc/%d/status: %w", key, pid, err)
		}
		*dst = kb << 10
	}
	return m, sc.Err()
}

// BinaryMemory is the execd binary's resident memory after Start on N
// interfaces (N = 0: started, waiting for an interface that does not
// exist - the baseline).
type BinaryMemory struct {
	N           int
	Mem         ProcMemory // after Start
	AfterGather ProcMemory // after Start and one Gather
	// Attached is the time from exec to every interface attached, as
	// often as the attachments can be checked (information).
	Attached time.Duration
}

// RunBinaryMemory starts the execd binary bin in a fresh namespace on 0
// and on each size of veth set, waits until it has attached to every
// interface and reads its memory, has it Gather once and reads it again,
// then closes its stdin (a clean stop) and checks it detached everything.
func RunBinaryMemory(t testing.TB, bin string, sizes []int) ([]BinaryMemory, error) {
	p := testnet.NewPair(t, testnet.Options{})
	most := 0
	for _, n := range sizes {
		most = max(most, n)
	}
	ifaces := p.AddVeths(t, "xms", "xmr", most)
	var out []BinaryMemory
	for _, n := range append([]int{0}, sizes...) {
		bm, err := binaryMemory(t, bin, p.Receiver, ifaces[:n])
		if err != nil {
			return nil, fmt.Errorf("binary on %d interfaces: %w", n, err)
		}
		out = append(out, bm)
	}
	return out, nil
}

func binaryMemory(t testing.TB, bin, ns string, ifaces []string) (BinaryMemory, error) {
	bm := BinaryMemory{N: len(ifaces)}
	conf := "[[inputs.xdp_udp_ports]]\n"
	if len(ifaces) == 0 {
		conf += "  interfaces = [\"xmabsent\"]\n  missing_interfaces = \"wait\"\n"
	} else {
		conf += "  interfaces = [\"" + strings.Join(ifaces, `", "`) + "\"]\n"
	}
	e, err := startExecd(t, bin, ns, conf)
	if err != nil {
		return bm, err
	}
	if len(ifaces) == 0 {
		time.Sleep(500 * time.Millisecond) // nothing to wait for
		if err, ok := e.exited(); ok {
			return bm, e.fail(fmt.Errorf("exited early: %v", err))
		}
	} else if bm.Attached, err = e.waitHooks(ns, ifaces, defaultHooks...); err != nil {
		return bm, e.fail(err)
	}
	// ip netns exec execs the binary: it keeps the command's pid.
	time.Sleep(200 * time.Millisecond)
	if bm.Mem, err = procMemory(e.cmd.Process.Pid); err != nil {
		return bm, e.fail(err)
	}
	if len(ifaces) > 0 {
		if err := e.gather(len(ifaces)); err != nil {
			return bm, e.fail(err)
		}
		time.Sleep(200 * time.Millisecond)
		if bm.AfterGather, err = procMemory(e.cmd.Process.Pid); err != nil {
			return bm, e.fail(err)
		}
	}
	if err := e.stop(); err != nil {
		return bm, fmt.Errorf("stopping: %w; stderr:\n%s", err, e.stderr.String())
	}
	return bm, checkHooks(ns, ifaces)
}

// KernelMemory is the kernel memory of one interface's maps.
type KernelMemory struct {
	Name     string
	Cfg      bpf.Config
	Measured uint64 // memlock of every map the program uses, this host
	Layout   bpf.Layout
}

// PerCPU is the counter table's bytes per CPU.
func (k KernelMemory) PerCPU() uint64 { return uint64(k.Layout.SlotsPerCPU) * 16 }

// At is the layout's estimate of the kernel memory with cpus CPUs.
func (k KernelMemory) At(cpus int) uint64 {
	l, err := bpf.NewLayout(k.Cfg, cpus)
	if err != nil {
		return 0
	}
	return l.KernelMemory()
}

// RunKernelMemory loads one interface's program and maps for the dense
// default and for a 1,000-port allow-list and reads their memlock.
func RunKernelMemory(l *bpf.Loader) ([]KernelMemory, error) {
	cases := []KernelMemory{
		{Name: "dense (default)", Cfg: bpf.Config{}},
		{Name: fmt.Sprintf("ports allow-list (%d)", AllowListSize), Cfg: bpf.Config{Ports: AllowList()}},
	}
	for i := range cases {
		c, err := l.Load(cases[i].Cfg)
		if err != nil {
			return nil, err
		}
		prog, err := c.Program(bpf.Plain)
		if err == nil {
			cases[i].Measured, err = mapMemory(prog)
		}
		cases[i].Layout = c.Layout()
		c.Close()
		if err != nil {
			return nil, err
		}
	}
	return cases, nil
}
