//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/xdp-udp-ports/xdp_udp_ports/bpf"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/cli"
)

func init() { subcommands["unpin"] = runUnpin }

// runUnpin detaches the programs pinned under the config's pin_path and
// removes their pins.
func runUnpin(args []string) int {
	fs := flag.NewFlagSet("xdp_udp_ports unpin", flag.ContinueOnError)
	configFile := fs.String("config", "", "the plugin's config file (its pin_path is cleaned)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: xdp_udp_ports unpin -config FILE\n\nDetaches the XDP programs pinned under pin_path and removes the pins.\n")
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseFlags(fs, args, os.Stdout, os.Stderr, nil); !ok {
		return code
	}
	log := cli.NewLogger(os.Stderr, false)
	p, err := cli.LoadConfig(*configFile)
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	if p.PinPath == "" {
		log.Errorf("%s sets no pin_path: nothing is pinned", *configFile)
		return 1
	}
	if err := unpinAll(p.PinPath, log); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

// unpinAll removes every interface's pins under dir, then dir if empty.
func unpinAll(dir string, log *cli.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := bpf.RemovePins(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		log.Infof("unpinned %s", path)
	}
	os.Remove(dir) // fails, harmlessly, if not empty or a mount point
	return errors.Join(errs...)
}
