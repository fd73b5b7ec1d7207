package xdp_udp_ports

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
)

// need finds a command the test runs, failing in CI when it is missing.
func need(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		testnet.SkipOrFail(t, "%s not installed (Debian: wireguard-go, wireguard-tools, dnsmasq-base, bind9-dnsutils): %v", name, err)
	}
	return path
}

// background starts a command that runs until the test ends.
func background(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // it may have exited
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }() // killed or exited: the log tells
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s:\n%s", strings.Join(cmd.Args, " "), out.String())
		}
	})
}

func output(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// wireguard brings up a WireGuard tunnel (wireguard-go: a TUN device)
// between the pair's namespaces, 198.51.100.1 on the sender's end and
// 198.51.100.2 on the receiver's, and returns the receiver's interface
// name. The names differ: wireguard-go's control sockets share one
// directory, whatever the namespace.
func wireguard(t *testing.T, p *testnet.Pair) string {
	t.Helper()
	wgGo, wg := need(t, "wireguard-go"), need(t, "wg")
	names := map[string]string{p.Sender: testnet.UniqueName("xwg"), p.Receiver: testnet.UniqueName("xwg")}
	dir := t.TempDir()
	keys := map[string][2]string{} // ns -> private key file, public key
	for _, ns := range []string{p.Sender, p.Receiver} {
		priv := output(t, exec.Command(wg, "genkey"))
		pubCmd := exec.Command(wg, "pubkey")
		pubCmd.Stdin = strings.NewReader(priv)
		file := filepath.Join(dir, ns+".key")
		if err := os.WriteFile(file, []byte(priv+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		keys[ns] = [2]string{file, output(t, pubCmd)}
		cmd := testnet.Command(ns, wgGo, "-f", names[ns])
		// This kernel "has" WireGuard; the module is not there.
		cmd.Env = append(os.Environ(), "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1")
		background(t, cmd)
		sock := filepath.Join("/var/run/wireguard", names[ns]+".sock")
		t.Cleanup(func() { os.Remove(sock) }) // left behind if wireguard-go had to be killed
	}
	for _, ns := range []string{p.Sender, p.Receiver} {
		deadline := time.Now().Add(5 * time.Second)
		for testnet.IP("-n", ns, "link", "show", names[ns]) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("wireguard-go made no %s in %s", names[ns], ns)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ends := []struct {
		ns, peer, addr, peerAddr, endpoint string
	}{
		{p.Sender, p.Receiver, "198.51.100.1/24", "198.51.100.2/32", p.ReceiverV4.String()},
		{p.Receiver, p.Sender, "198.51.100.2/24", "198.51.100.1/32", p.SenderV4.String()},
	}
	for _, e := range ends {
		if out, err := testnet.Command(e.ns, wg, "set", names[e.ns], "listen-port", "51820", "private-key", keys[e.ns][0],
			"peer", keys[e.peer][1], "allowed-ips", e.peerAddr, "endpoint", e.endpoint+":51820").CombinedOutput(); err != nil {
			t.Fatalf("wg set: %v: %s", err, out)
		}
		testnet.MustIP(t, "-n", e.ns, "addr", "add", e.addr, "dev", names[e.ns])
		testnet.MustIP(t, "-n", e.ns, "link", "set", names[e.ns], "up")
	}
	return names[p.Receiver]
}

// TestWireGuardDNS: the reproduction. A DNS server (dnsmasq)
// behind a WireGuard tunnel, 100 dig queries through it: on the tunnel
// interface (ARPHRD_NONE, frames start at the IP header) every query is
// counted to destination port 53 at ingress and every response to source
// port 53 at egress.
func TestWireGuardDNS(t *testing.T) {
	p := testnet.NewPair(t, testnet.Options{})
	if !p.RunInReceiver(t) {
		return
	}
	dnsmasq, dig := need(t, "dnsmasq"), need(t, "dig")
	wg := wireguard(t, p)
	background(t, testnet.Command(p.Receiver, dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address=198.51.100.2", "--bind-interfaces", "--port=53", "--pid-file=", "--user=root",
		"--address=/example.test/192.0.2.99"))

	plugin := newPlugin(t, func(x *XDPUDPPorts) {
		x.Directions = []string{"ingress", "egress"}
		x.PortRoles = []string{"destination", "source"}
		x.Ports = []string{"53"}
	}, wg)
	acc := start(t, plugin)

	const queries = 100
	var batch strings.Builder
	for i := range queries {
		fmt.Fprintf(&batch, "q%d.example.test A\n", i)
	}
	file := filepath.Join(t.TempDir(), "queries")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// dnsmasq may need a moment to listen; the first query waits for the handshake.
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("ip", "netns", "exec", p.Sender, dig, "@198.51.100.2", "+short", "+tries=1", "+time=1", "warmup.example.test").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("no DNS answer through the tunnel")
		}
	}
	before := gatherSettled(t, plugin)
	out, err := testnet.Command(p.Sender, dig, "@198.51.100.2", "+short", "+tries=1", "+time=2", "-f", file).CombinedOutput()
	if err != nil || strings.Count(string(out), "192.0.2.99") != queries {
		t.Fatalf("dig: %v, %d answers of %d:\n%s", err, strings.Count(string(out), "192.0.2.99"), queries, out)
	}
	after := gatherSettled(t, plugin)
	delta := func(dir, role string) int64 {
		return seriesPackets(after, wg, dir, role, "53") - seriesPackets(before, wg, dir, role, "53")
	}
	if got := delta("ingress", roleDestination); got != queries {
		t.Errorf("ingress destination port 53: %d queries counted, want %d", got, queries)
	}
	if got := delta("egress", roleSource); got != queries {
		t.Errorf("egress source port 53: %d responses counted, want %d", got, queries)
	}
	for _, dir := range []string{"ingress", "egress"} {
		_, summaries := byDirection(after, dir)
		if len(summaries) != 1 || summaries[0].Fields()["other_packets"] != int64(0) || summaries[0].Fields()["malformed_packets"] != int64(0) {
			t.Errorf("%s summary %v, want only UDP (no other, no malformed)", dir, summaries)
		}
	}
	requireNoErrors(t, acc)
}
