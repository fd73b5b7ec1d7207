package testproc

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
)

func fieldIs(name string, want int64) func(telegraf.Metric) bool {
	return func(m telegraf.Metric) bool {
		v, _ := m.GetField(name)
		return v == want
	}
}

// Stdout lines are parsed and checked while stderr is written and read
// concurrently (go test -race); closing stdin ends the process, whose
// exit code Exit returns, again on a second call.
func TestStartReadsStdoutAndStderr(t *testing.T) {
	p := Start(t, exec.Command("sh", "-c", `
		i=0
		while [ $i -lt 50 ]; do i=$((i+1)); echo "I! line $i" >&2; echo "m n=${i}i 1"; done
		cat >/dev/null
		echo "I! stdin closed" >&2
		exit 3`))
	var checked []string
	p.EachLine = func(_ testing.TB, line string) { checked = append(checked, line) }
	p.WaitStderr(t, 5*time.Second, "I! line 50\n")
	m := p.WaitFor(t, 5*time.Second, fieldIs("n", 50))
	if m.Name() != "m" || len(checked) != 50 || checked[49] != "m n=50i 1" {
		t.Errorf("metric %v, lines checked %q; want m and the 50 lines", m, checked)
	}
	p.Stdin.Close()
	if code := p.Exit(t, 5*time.Second); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	if code := p.Exit(t, time.Second); code != 3 {
		t.Errorf("exit code %d on the second call, want 3", code)
	}
	p.WaitStderr(t, time.Second, "I! stdin closed\n")
}

// What a process writes just before it exits is read too.
func TestWaitForReadsLinesAfterExit(t *testing.T) {
	p := Start(t, exec.Command("sh", "-c", `i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "m n=${i}i 1"; done`))
	if code := p.Exit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	p.WaitFor(t, 5*time.Second, fieldIs("n", 2000))
}

// GatherUntil writes a line to stdin at once and then every 200 ms; here
// each line is answered with one metric counting the gathers.
func TestGatherUntil(t *testing.T) {
	p := Start(t, exec.Command("sh", "-c", `i=0; while read -r _; do i=$((i+1)); echo "m gathers=${i}i 1"; done`))
	start := time.Now()
	p.GatherUntil(t, 5*time.Second, fieldIs("gathers", 3))
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("3 gathers after %s, want 2 intervals of 200ms between them", took)
	}
}

// A command with its own stdin and stdout keeps them.
func TestStartKeepsOwnStdinStdout(t *testing.T) {
	cmd := exec.Command("sh", "-c", `cat; echo done; echo oops >&2`)
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	var out SyncBuffer
	cmd.Stdin, cmd.Stdout = devNull, &out
	p := Start(t, cmd)
	if code := p.Exit(t, 5*time.Second); code != 0 || p.Stdin != nil {
		t.Fatalf("exit code %d, stdin pipe %v: want 0 and none", code, p.Stdin)
	}
	if out.String() != "done\n" || p.Stderr.String() != "oops\n" {
		t.Errorf("stdout %q, stderr %q", &out, p.Stderr)
	}
}

func TestReadCreds(t *testing.T) {
	c := ReadCreds(t, os.Getpid())
	if c.UID != strconv.Itoa(os.Getuid()) {
		t.Errorf("uid %s, want %d", c.UID, os.Getuid())
	}
	if CapMask(CapBPF, CapNetAdmin) != 1<<39|1<<12 {
		t.Errorf("CapMask(CapBPF, CapNetAdmin) = %#x", CapMask(CapBPF, CapNetAdmin))
	}
}
