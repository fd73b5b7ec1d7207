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
	plugin "github.com/xdp-udp-ports/xdp_udp_ports/plugins/inputs/xdp_udp_ports"
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

// unpinAll removes every interface's pins under dir
// (dir/<interface>/<direction>/), then the directories if empty. It
// refuses while a running instance holds dir: that instance's programs
// and pins are left alone.
func unpinAll(dir string, log *cli.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lock, err := plugin.LockPinPath(dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		iface := filepath.Join(dir, e.Name())
		dirs, err := os.ReadDir(iface)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, d := range dirs {
			if !d.IsDir() {
				continue
			}
			path := filepath.Join(iface, d.Name())
			if err := bpf.RemovePins(path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", path, err))
				continue
			}
			log.Infof("unpinned %s", path)
		}
		// An interface directory of an earlier layout holds pins itself.
		if err := bpf.RemovePins(iface); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", iface, err))
		}
	}
	os.Remove(dir) // fails, harmlessly, if not empty or a mount point
	return errors.Join(errs...)
}
