//go:build package

package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testnet"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/testproc"
)

// TestDebInstall installs the .deb on this machine, as an admin would, and
// checks what the README's "Install" section says. Without a telegraf
// group the binary is root:root 0755 without capabilities and the
// post-install script says how to finish (dpkg-reconfigure, which it
// advises, does). With the group, on every configure, it is root:telegraf
// 0750 with cap_bpf,cap_net_admin,cap_perfmon+ep: an unprivileged member
// of the group runs it with the execd snippet's command line, holding no
// capabilities of its own, and it counts exactly on a veth; nobody else
// may run it. Remove takes the binary, purge the config, nothing is left.
func TestDebInstall(t *testing.T) {
	testnet.Require(t)
	requireTools(t, "dpkg", "dpkg-query", "dpkg-reconfigure", "getent", "groupadd", "groupdel", "useradd", "userdel", "getcap", "setpriv")
	deb := pkgFile(t, "*.deb")
	refuseIfPresent(t)

	m := &machine{}
	t.Cleanup(func() { m.restore(t) })
	hadGroup := m.telegrafGID(t) != ""
	telegrafDir := exists("/etc/telegraf")

	// 1. Install.
	out := m.dpkg(t, "-i", deb)
	if hadGroup {
		t.Log("this machine has a telegraf group: the no-group case is not tested")
		checkCapped(t, m)
	} else {
		checkOwner(t, binFile, 0, 0, 0o755)
		if names, _ := fileCaps(t, binFile); names != nil {
			t.Errorf("%s has capabilities %v without a telegraf group", binFile, names)
		}
		if !strings.Contains(out, `no "telegraf" group`) || !strings.Contains(out, "setcap cap_bpf,cap_net_admin,cap_perfmon+ep "+binFile) {
			t.Errorf("dpkg -i without a telegraf group does not say how to finish:\n%s", out)
		}
		m.addGroup(t)
		// What the script advises once Telegraf is installed.
		m.run(t, "dpkg-reconfigure", pkgName)
		checkCapped(t, m)
	}

	// 2. Reinstall: dpkg writes a new file (without capabilities), the
	// post-install script gives them again; an edited conffile stays.
	edited := appendLine(t, confFile, "# edited by TestDebInstall")
	m.dpkg(t, "-i", deb)
	checkCapped(t, m)
	if got, err := os.ReadFile(confFile); err != nil || string(got) != edited {
		t.Errorf("reinstalling replaced the edited %s (%v)", confFile, err)
	}
	if c := run(t, "dpkg-query", "-W", "-f=${Conffiles}", pkgName); !strings.Contains(c, " "+confFile+" ") {
		t.Errorf("%s is not a conffile: %q", confFile, c)
	}
	listed := strings.Fields(run(t, "dpkg", "-L", pkgName))
	for _, f := range append(slices.Clone(pkgFiles), overrides) {
		if !slices.Contains(listed, f) {
			t.Errorf("dpkg -L %s does not list %s", pkgName, f)
		}
	}
	for _, f := range listed {
		if strings.HasPrefix(f, "/etc/telegraf") {
			t.Errorf("the package installs %s: it must not change what Telegraf does", f)
		}
	}
	if exists("/etc/telegraf") != telegrafDir {
		t.Errorf("installing changed whether /etc/telegraf exists")
	}

	// 3. Run it as Telegraf would, as an unprivileged member of the group.
	t.Run("runs_as_telegraf_member", func(t *testing.T) { runInstalled(t, m) })
	t.Run("others_cannot_run_it", func(t *testing.T) {
		out, err := command("setpriv", asUser("65534", "65534", binFile, "-h")...).CombinedOutput()
		if testnet.ExitCode(err) != 126 || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("nobody ran %s: %v\n%s", binFile, err, out)
		}
	})

	// 4. Remove takes the binary (and with it its capabilities), keeps the
	// config; purge takes the config; nothing is left.
	m.dpkg(t, "-r", pkgName)
	requireGone(t, binFile, docDir, manPage, overrides)
	if !exists(confFile) {
		t.Errorf("dpkg -r removed %s (only purge should)", confFile)
	}
	m.dpkg(t, "--purge", pkgName)
	requireGone(t, append(slices.Clone(pkgFiles), overrides, confDir, docDir)...)
	if s := debStatus(t); s != "" {
		t.Errorf("after purge dpkg still knows %s: %q", pkgName, s)
	}
}

// machine is what the test changed on this machine; restore undoes it,
// also when the test fails: purge the package, delete the user and group
// it created.
type machine struct {
	installed  bool
	user       string // created by the test
	addedGroup bool
	uid, gid   string
}

func (m *machine) dpkg(t *testing.T, args ...string) string {
	t.Helper()
	m.installed = true
	return m.run(t, "dpkg", args...)
}

// run runs a command and logs its output.
func (m *machine) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out := run(t, name, args...)
	t.Logf("%s %s:\n%s", name, strings.Join(args, " "), out)
	return out
}

func (m *machine) restore(t *testing.T) {
	if m.installed && debStatus(t) != "" {
		if out, err := command("dpkg", "--purge", pkgName).CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge %s: %v\n%s", pkgName, err, out)
		}
	}
	if m.user != "" {
		if out, err := command("userdel", m.user).CombinedOutput(); err != nil {
			t.Errorf("cleanup: userdel %s: %v\n%s", m.user, err, out)
		}
	}
	if m.addedGroup {
		if out, err := command("groupdel", "telegraf").CombinedOutput(); err != nil {
			t.Errorf("cleanup: groupdel telegraf: %v\n%s", err, out)
		}
	}
}

// telegrafGID returns the gid of group telegraf, or "" if there is none.
func (m *machine) telegrafGID(t *testing.T) string {
	t.Helper()
	out, err := command("getent", "group", "telegraf").Output()
	if err != nil {
		if testnet.ExitCode(err) == 2 { // not found
			return ""
		}
		t.Fatalf("getent group telegraf: %v", err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	if len(f) < 3 {
		t.Fatalf("getent group telegraf: %q", out)
	}
	return f[2]
}

func (m *machine) addGroup(t *testing.T) {
	t.Helper()
	run(t, "groupadd", "--system", "telegraf")
	m.addedGroup = true
}

// addUser creates an unprivileged user whose group is telegraf (as the
// Telegraf packages' telegraf user is) and returns its uid and gid.
func (m *machine) addUser(t *testing.T) (uid, gid string) {
	t.Helper()
	if m.user == "" {
		name := testnet.UniqueName("xupkg")
		run(t, "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", "--gid", "telegraf", name)
		m.user = name
		m.uid = strings.TrimSpace(run(t, "id", "-u", name))
		m.gid = m.telegrafGID(t)
	}
	return m.uid, m.gid
}

// debStatus returns dpkg's status of the package ("ii", "rc", ...), or ""
// when it is not installed at all.
func debStatus(t *testing.T) string {
	t.Helper()
	out, err := command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkgName).Output()
	s := strings.TrimSpace(string(out))
	if err != nil || len(s) < 2 || s[1] == 'n' {
		return ""
	}
	return s
}

// refuseIfPresent stops the test when the package, or files where it
// installs them, are on this machine already: the test purges what it
// installs, which would take an admin's installation and config with it.
func refuseIfPresent(t *testing.T) {
	t.Helper()
	if s := debStatus(t); s != "" {
		t.Fatalf("%s is installed on this machine (dpkg status %q): the test installs and purges it; "+
			"remove it first (dpkg --purge %s) or run the test elsewhere", pkgName, s, pkgName)
	}
	for _, p := range []string{binFile, confDir, docDir} {
		if exists(p) {
			t.Fatalf("%s exists but %s is not installed: the test would overwrite and remove it; move it away first", p, pkgName)
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// checkCapped checks the binary is root:telegraf 0750 with exactly the
// capabilities it needs, effective.
func checkCapped(t *testing.T, m *machine) {
	t.Helper()
	gid, err := strconv.ParseUint(m.telegrafGID(t), 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	checkOwner(t, binFile, 0, uint32(gid), 0o750)
	if names, flags := fileCaps(t, binFile); !slices.Equal(names, wantCaps) || flags != "ep" {
		t.Errorf("getcap %s: %v=%s, want %v=ep", binFile, names, flags, wantCaps)
	}
}

func appendLine(t *testing.T, path, line string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, line+"\n"...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// runInstalled runs the snippet's command line - the installed binary
// with -poll_interval_disabled, gathering on a line on stdin - as an
// unprivileged member of group telegraf with no capabilities of its own,
// on the installed config with interfaces set to a veth in a namespace.
func runInstalled(t *testing.T, m *machine) {
	uid, gid := m.addUser(t)
	snippet, err := os.ReadFile(snippetFile)
	if err != nil {
		t.Fatal(err)
	}
	cmdline := loadSnippet(t, snippet)
	checkSnippetCommand(t, cmdline, binFile)

	p := testnet.NewPair(t, testnet.Options{})
	conf, err := os.ReadFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	const lo = "\n  interfaces = [\"lo\"]\n"
	if strings.Count(string(conf), lo) != 1 {
		t.Fatalf("%s has no line %q to point at the veth:\n%s", confFile, strings.TrimSpace(lo), conf)
	}
	cfg := filepath.Join(testproc.PublicDir(t), "xdp_udp_ports.conf")
	body := strings.Replace(string(conf), lo, fmt.Sprintf("\n  interfaces = [%q]\n", p.ReceiverIf), 1)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	args := slices.Clone(cmdline)
	args[slices.Index(args, "-config")+1] = cfg

	pr := testproc.Start(t, testnet.Command(p.Receiver, "setpriv", asUser(uid, gid, args...)...))
	pr.GatherUntil(t, 10*time.Second, func(m telegraf.Metric) bool {
		iface, _ := m.GetTag("interface")
		return m.Name() == "xdp_udp_ports_interface" && iface == p.ReceiverIf
	})
	if c := testproc.ReadCreds(t, pr.Cmd.Process.Pid); c.UID != uid || c.CapEff != wantCapMask || c.CapAmb != 0 || c.CapInh != 0 {
		t.Fatalf("binary runs as uid %s with CapEff %#x CapAmb %#x CapInh %#x, want uid %s with CapEff %#x from the file only",
			c.UID, c.CapEff, c.CapAmb, c.CapInh, uid, wantCapMask)
	}

	p.MustSend(t,
		testnet.Datagrams{Dst: p.ReceiverV4, Port: 5353, Count: 13, Payload: 40},
		testnet.Datagrams{Dst: p.ReceiverV6, Port: 5353, Count: 6, Payload: 40},
		testnet.Datagrams{Dst: p.ReceiverV4, Port: 123, Count: 5, Payload: 48},
	)
	for _, want := range []struct {
		port    string
		packets int
		bytes   int
	}{
		{"5353", 19, 13*testnet.FrameLen(p.ReceiverV4, 40) + 6*testnet.FrameLen(p.ReceiverV6, 40)},
		{"123", 5, 5 * testnet.FrameLen(p.ReceiverV4, 48)},
	} {
		got := pr.GatherUntil(t, 10*time.Second, func(m telegraf.Metric) bool {
			iface, _ := m.GetTag("interface")
			port, _ := m.GetTag("port")
			role, _ := m.GetTag("port_role")
			packets, _ := m.GetField("packets")
			return m.Name() == "xdp_udp_ports" && iface == p.ReceiverIf && port == want.port &&
				role == "destination" && packets == int64(want.packets)
		})
		if b, _ := got.GetField("bytes"); b != int64(want.bytes) {
			t.Errorf("port %s: %d packets, bytes %v, want %d", want.port, want.packets, b, want.bytes)
		}
	}

	pr.Stdin.Close()
	if code := pr.Exit(t, 5*time.Second); code != 0 {
		t.Fatalf("exit code %d after stdin closed; stderr:\n%s", code, pr.Stderr)
	}
	testnet.RequireNoXDP(t, p.Receiver, p.ReceiverIf)
}

// asUser returns setpriv's arguments to run argv as uid:gid with no
// supplementary groups and no capabilities of its own (inheritable and
// ambient sets empty, full bounding set), as a service's process without
// capabilities is: what the binary holds comes from its file. setpriv
// execs with the capabilities it kept, which would pass the permission
// check of a 0750 file, so a shell without any execs the binary.
func asUser(uid, gid string, argv ...string) []string {
	return append([]string{"--reuid=" + uid, "--regid=" + gid, "--clear-groups", "--inh-caps=-all", "--ambient-caps=-all",
		"sh", "-c", `exec "$0" "$@"`}, argv...)
}
