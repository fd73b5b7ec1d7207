//go:build linux

package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	path := filepath.Join(t.TempDir(), "xdp_udp_ports.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return bm, err
	}
	// Gather only when a line arrives on stdin (as execd with signal =
	// "STDIN" does).
	cmd := testnet.Command(ns, bin, "-config", path, "-poll_interval_disabled")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return bm, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return bm, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return bm, err
	}
	summaries := make(chan struct{}, 1024) // one per interface per Gather
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "xdp_udp_ports_interface,") {
				summaries <- struct{}{}
			}
		}
		close(summaries)
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() error {
		stdin.Close()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			return fmt.Errorf("did not stop within 10 s of its stdin closing (killed: %v)", <-done)
		}
	}
	fail := func(err error) (BinaryMemory, error) {
		if serr := stop(); serr != nil {
			err = fmt.Errorf("%w; stopping: %v", err, serr)
		}
		return bm, fmt.Errorf("%w; stderr:\n%s", err, stderr.String())
	}
	bm.Mem, bm.Attached, err = waitStarted(cmd, done, ns, ifaces, start)
	if err != nil {
		return fail(err)
	}
	if len(ifaces) > 0 {
		if _, err := io.WriteString(stdin, "\n"); err != nil {
			return fail(fmt.Errorf("asking for a Gather: %w", err))
		}
		for range ifaces {
			select {
			case _, ok := <-summaries:
				if !ok {
					return fail(errors.New("stdout closed before the Gather's metrics"))
				}
			case <-time.After(30 * time.Second):
				return fail(errors.New("no Gather within 30 s"))
			}
		}
		time.Sleep(200 * time.Millisecond)
		if bm.AfterGather, err = procMemory(cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	if err := stop(); err != nil {
		return bm, fmt.Errorf("stopping: %w; stderr:\n%s", err, stderr.String())
	}
	return bm, checkHooks(ns, ifaces)
}

// waitStarted waits until the binary has attached to every interface
// (with none, a fixed half second), lets it settle for 200 ms and reads its
// memory. ip netns exec execs the binary, so it keeps the command's pid.
func waitStarted(cmd *exec.Cmd, done chan error, ns string, ifaces []string, start time.Time) (ProcMemory, time.Duration, error) {
	deadline := start.Add(30 * time.Second)
	if len(ifaces) == 0 {
		deadline = start.Add(500 * time.Millisecond)
	}
	var attached time.Duration
	for {
		select {
		case err := <-done:
			done <- err
			return ProcMemory{}, 0, fmt.Errorf("exited early: %v", err)
		case <-time.After(2 * time.Millisecond):
		}
		if len(ifaces) == 0 {
			if time.Now().After(deadline) {
				break
			}
			continue
		}
		// The last interface is attached last: check it alone until it is.
		if checkHooks(ns, ifaces[len(ifaces)-1:], defaultHooks...) == nil && checkHooks(ns, ifaces, defaultHooks...) == nil {
			attached = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			return ProcMemory{}, 0, fmt.Errorf("not attached to all %d interfaces after 30 s", len(ifaces))
		}
	}
	time.Sleep(200 * time.Millisecond)
	m, err := procMemory(cmd.Process.Pid)
	return m, attached, err
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
