package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Command is the import path of the binary Main builds.
const Command = "github.com/xdp-udp-ports/xdp_udp_ports/cmd/xdp_udp_ports"

// Main builds the command once for a package's tests: from TestMain, it
// builds Command into a temporary directory, sets *bin to the binary's
// path, runs the tests, removes the directory and exits with the tests'
// exit code.
func Main(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "xdp_udp_ports-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "xdp_udp_ports")
	if out, err := exec.Command("go", "build", "-o", *bin, Command).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the binary: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
