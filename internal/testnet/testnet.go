//go:build linux

// Package testnet builds the private networks live tests run in: a pair of
// network namespaces joined by a veth, addresses from 192.0.2.0/24,
// 198.51.100.0/24 and 2001:db8::/32 that exist only inside them, static neighbour entries (so no
// datagram waits for ARP/ND), and helpers to run code in a namespace, send
// traffic and see what programs an interface has at which hook. Everything a test
// creates is removed by t.Cleanup, also when the test fails.
package testnet

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// Require makes sure the test may create namespaces and load BPF programs.
// Without privileges it skips, unless CI=true, where it fails.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root (network namespaces, veth, BPF)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		SkipOrFail(t, "needs iproute2's ip command: %v", err)
	}
}

// SkipOrFail skips the test, or fails it when CI=true: CI must never skip.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, refusing to skip: "+format, args...)
	}
	t.Skipf(format, args...)
}

var seq atomic.Uint32

// UniqueName returns a name no other test in any package running now uses:
// prefix, the process id and a sequence number. Keep prefix short when
// the name is an interface name (15 bytes at most).
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s%d%d", prefix, os.Getpid()%100000, seq.Add(1))
}

// Pair is two namespaces joined by a veth: traffic goes from Sender to
// Receiver, where the program under test is attached.
type Pair struct {
	Sender, Receiver     string // namespace names
	SenderIf, ReceiverIf string // veth ends, one in each namespace
	ReceiverIndex        int    // ifindex of ReceiverIf in Receiver
	SenderMAC            net.HardwareAddr
	ReceiverMAC          net.HardwareAddr
	SenderV4, ReceiverV4 net.IP
	SenderV6, ReceiverV6 net.IP
}

// Options shapes a Pair.
type Options struct {
	// MTU of both veth ends; 0 keeps the default (1500).
	MTU int
	// SenderIf and ReceiverIf name the veth ends; empty picks "xs0"/"xr0".
	SenderIf, ReceiverIf string
}

// NewPair creates a Pair and registers its removal with t.Cleanup. In a
// child started by RunInReceiver it returns the parent's pair instead (a
// test that re-executes itself creates exactly one pair before that).
func NewPair(t testing.TB, opts Options) *Pair {
	t.Helper()
	if p := childPair(t); p != nil {
		return p
	}
	Require(t)
	if opts.SenderIf == "" {
		opts.SenderIf = "xs0"
	}
	if opts.ReceiverIf == "" {
		opts.ReceiverIf = "xr0"
	}
	p := &Pair{
		Sender:     UniqueName("xut-s-"),
		Receiver:   UniqueName("xut-r-"),
		SenderIf:   opts.SenderIf,
		ReceiverIf: opts.ReceiverIf,
		SenderV4:   net.ParseIP("192.0.2.1").To4(),
		ReceiverV4: net.ParseIP("192.0.2.2").To4(),
		SenderV6:   net.ParseIP("2001:db8::1"),
		ReceiverV6: net.ParseIP("2001:db8::2"),
	}
	AddNamespace(t, p.Sender)
	AddNamespace(t, p.Receiver)
	l := p.connect(t, p.SenderIf, p.ReceiverIf, opts.MTU, [2]string{"192.0.2.1/24", "192.0.2.2/24"}, [2]string{"2001:db8::1/64", "2001:db8::2/64"})
	p.SenderMAC, p.ReceiverMAC, p.ReceiverIndex = l.SenderMAC, l.ReceiverMAC, l.ReceiverIndex
	return p
}

// Link is one veth between a pair's namespaces.
type Link struct {
	SenderIf, ReceiverIf   string
	SenderMAC, ReceiverMAC net.HardwareAddr
	ReceiverIndex          int
	SenderV4, ReceiverV4   net.IP // nil on the pair's own link (see Pair)
}

// AddLink adds another veth between the pair's namespaces, with an IPv4
// /30 of the documentation range 198.51.100.0/24 of its own: the sender
// gets 198.51.100.(4 x subnet + 1), the receiver (4 x subnet + 2); subnet
// 1-63, one per link. Delete it with DelLink, or it goes with the
// namespaces.
func (p *Pair) AddLink(t testing.TB, senderIf, receiverIf string, subnet int) *Link {
	t.Helper()
	if subnet < 1 || subnet > 63 {
		t.Fatalf("AddLink: subnet %d out of 1-63", subnet)
	}
	base := 4 * subnet
	sender, receiver := fmt.Sprintf("198.51.100.%d", base+1), fmt.Sprintf("198.51.100.%d", base+2)
	l := p.connect(t, senderIf, receiverIf, 0, [2]string{sender + "/30", receiver + "/30"}, [2]string{})
	l.SenderV4, l.ReceiverV4 = net.ParseIP(sender).To4(), net.ParseIP(receiver).To4()
	return l
}

// DelLink deletes a veth (both ends) by its receiver end's name.
func (p *Pair) DelLink(t testing.TB, receiverIf string) {
	t.Helper()
	MustIP(t, "-n", p.Receiver, "link", "del", receiverIf)
}

// connect creates a veth from the sender to the receiver namespace with
// the given IPv4 (and, if set, IPv6) addresses, brings it up and adds
// permanent neighbour entries both ways: no datagram waits (or is
// dropped) while ARP/ND resolve, and no ARP/NS/NA frames appear in the
// receiver's counts.
func (p *Pair) connect(t testing.TB, senderIf, receiverIf string, mtu int, v4, v6 [2]string) *Link {
	t.Helper()
	MustIP(t, "link", "add", senderIf, "netns", p.Sender, "type", "veth", "peer", "name", receiverIf, "netns", p.Receiver)
	ends := [2]struct{ ns, dev string }{{p.Sender, senderIf}, {p.Receiver, receiverIf}}
	for i, e := range ends {
		if mtu != 0 {
			MustIP(t, "-n", e.ns, "link", "set", e.dev, "mtu", fmt.Sprint(mtu))
		}
		MustIP(t, "-n", e.ns, "addr", "add", v4[i], "dev", e.dev)
		if v6[i] != "" {
			MustIP(t, "-n", e.ns, "addr", "add", v6[i], "dev", e.dev, "nodad")
		}
		MustIP(t, "-n", e.ns, "link", "set", e.dev, "up")
		MustIP(t, "-n", e.ns, "link", "set", "lo", "up")
	}
	l := &Link{SenderIf: senderIf, ReceiverIf: receiverIf}
	var err error
	if l.SenderMAC, _, err = linkInfo(p.Sender, senderIf); err != nil {
		t.Fatal(err)
	}
	if l.ReceiverMAC, l.ReceiverIndex, err = linkInfo(p.Receiver, receiverIf); err != nil {
		t.Fatal(err)
	}
	macs := [2]net.HardwareAddr{l.SenderMAC, l.ReceiverMAC}
	for i, e := range ends {
		for _, addr := range []string{v4[1-i], v6[1-i]} {
			if ip, _, ok := strings.Cut(addr, "/"); ok {
				MustIP(t, "-n", e.ns, "neigh", "replace", ip, "lladdr", macs[1-i].String(), "dev", e.dev, "nud", "permanent")
			}
		}
	}
	return l
}

// AddNamespace creates a named network namespace and deletes it (with every
// interface in it) at cleanup.
func AddNamespace(t testing.TB, name string) {
	t.Helper()
	MustIP(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
}

// IP runs the ip command.
func IP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// MustIP runs the ip command and fails the test on error.
func MustIP(t testing.TB, args ...string) {
	t.Helper()
	if err := IP(args...); err != nil {
		t.Fatal(err)
	}
}

// Command returns a command that runs name inside namespace ns.
func Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// MountBPFFS mounts a private bpffs on a new temporary directory and
// unmounts it at cleanup (removing whatever was pinned there).
func MountBPFFS(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "xdp-udp-ports-bpffs")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "bpf", "bpf", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Fatalf("mount -t bpf: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
		os.Remove(dir)
	})
	return dir
}

// AddVeths adds n veths between the pair's namespaces in one `ip -batch`
// run, named senderPrefix<i> and receiverPrefix<i> (i from 0), up and
// without addresses. It returns the receiver ends' names.
func (p *Pair) AddVeths(t testing.TB, senderPrefix, receiverPrefix string, n int) []string {
	t.Helper()
	var batch strings.Builder
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", receiverPrefix, i)
		fmt.Fprintf(&batch, "link add %s%d netns %s type veth peer name %s netns %s\n", senderPrefix, i, p.Sender, names[i], p.Receiver)
	}
	runBatch(t, "", batch.String())
	var up [2]strings.Builder
	for i, name := range names {
		fmt.Fprintf(&up[0], "link set %s%d up\n", senderPrefix, i)
		fmt.Fprintf(&up[1], "link set %s up\n", name)
	}
	runBatch(t, p.Sender, up[0].String())
	runBatch(t, p.Receiver, up[1].String())
	return names
}

func runBatch(t testing.TB, ns, commands string) {
	t.Helper()
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(commands)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
