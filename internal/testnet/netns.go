//go:build linux

package testnet

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread switched into network namespace ns. Sockets
// and BPF links made in fn stay in ns after it returns.
func Do(ns string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering netns %s: %w", ns, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime ends it with this goroutine
		// rather than reuse a thread in the wrong namespace.
		return fmt.Errorf("leaving netns %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// InSender runs fn in the sender namespace.
func (p *Pair) InSender(fn func() error) error { return Do(p.Sender, fn) }

// InReceiver runs fn in the receiver namespace.
func (p *Pair) InReceiver(fn func() error) error { return Do(p.Receiver, fn) }

func handle(ns string) (*netlink.Handle, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", ns, err)
	}
	defer h.Close()
	return netlink.NewHandleAt(h)
}

func linkInfo(ns, dev string) (net.HardwareAddr, int, error) {
	h, err := handle(ns)
	if err != nil {
		return nil, 0, err
	}
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		return nil, 0, fmt.Errorf("%s in netns %s: %w", dev, ns, err)
	}
	return l.Attrs().HardwareAddr, l.Attrs().Index, nil
}

// LinkIndex returns the ifindex of dev in namespace ns.
func LinkIndex(ns, dev string) (int, error) {
	_, idx, err := linkInfo(ns, dev)
	return idx, err
}

// XDPProgID returns the id of the XDP program attached to dev in namespace
// ns, 0 if there is none.
func XDPProgID(ns, dev string) (uint32, error) {
	h, err := handle(ns)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		return 0, fmt.Errorf("%s in netns %s: %w", dev, ns, err)
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return x.ProgId, nil
	}
	return 0, nil
}

// RequireNoXDP fails the test if dev in ns has an XDP program attached.
func RequireNoXDP(t testing.TB, ns, dev string) {
	t.Helper()
	id, err := XDPProgID(ns, dev)
	if err != nil {
		t.Fatal(err)
	}
	if id != 0 {
		t.Fatalf("%s in netns %s still has XDP program id %d attached", dev, ns, id)
	}
}

const childEnv = "XDP_UDP_PORTS_TESTNET_CHILD"

func childPair(t testing.TB) *Pair {
	v := os.Getenv(childEnv)
	if v == "" {
		return nil
	}
	var p Pair
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		t.Fatalf("decoding %s: %v", childEnv, err)
	}
	return &p
}

// IsChild reports whether this process is a child of RunInReceiver.
func IsChild() bool { return os.Getenv(childEnv) != "" }

// RunInReceiver runs the calling test again in a child process inside the
// receiver namespace (ip netns exec), so that every thread of the code
// under test - goroutines included - is in that namespace. In the parent
// it waits for the child, copies its output to the test log, fails if the
// child failed and returns false: the caller returns at once. In the child
// it returns true and the test goes on there. InSender and the other
// helpers work in the child as in the parent.
func (p *Pair) RunInReceiver(t *testing.T) bool {
	t.Helper()
	if IsChild() {
		return true
	}
	enc, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(t.Name(), "/")
	for i, s := range parts {
		parts[i] = "^" + regexp.QuoteMeta(s) + "$"
	}
	args := []string{"-test.run", strings.Join(parts, "/"), "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := Command(p.Receiver, os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+string(enc))
	out, err := cmd.CombinedOutput()
	t.Logf("child in netns %s:\n%s", p.Receiver, out)
	if err != nil {
		t.Fatalf("test in netns %s failed: %v", p.Receiver, err)
	}
	if !strings.Contains(string(out), "PASS") || strings.Contains(string(out), "no tests to run") {
		t.Fatalf("test in netns %s did not run", p.Receiver)
	}
	return false
}

// ExitCode returns the exit code of a finished command error (0 for nil).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
