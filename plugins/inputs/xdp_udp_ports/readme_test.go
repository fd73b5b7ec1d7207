package xdp_udp_ports

import (
	"os"
	"strings"
	"testing"
)

// The README's configuration section is sample.conf, verbatim.
func TestReadmeHasSampleConfig(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := "```toml @sample.conf\n" + sampleConfig + "```\n"
	if !strings.Contains(string(readme), block) {
		t.Error("README.md's ```toml @sample.conf block differs from sample.conf")
	}
}
