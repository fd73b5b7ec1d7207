// Command xdp_udp_ports runs the xdp_udp_ports input as a Telegraf execd
// plugin: it prints line protocol on stdout, gathers every -poll_interval
// (or when Telegraf writes a line to stdin, with -poll_interval_disabled),
// and stops cleanly - detaching its XDP programs - when stdin closes or on
// SIGTERM/SIGINT. `xdp_udp_ports top` is a live view (internal/top),
// `xdp_udp_ports unpin` removes what pin_path kept.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/xdp-udp-ports/xdp_udp_ports/internal/cli"
	"github.com/xdp-udp-ports/xdp_udp_ports/internal/top"
)

func main() {
	// Libraries that log through the standard logger write Telegraf's
	// level markers first ("D! ..."); no date before them.
	log.SetFlags(0)
	os.Exit(run(os.Args[1:]))
}

// subcommands besides the default execd mode.
var subcommands = map[string]func(args []string) int{"top": top.Run}

func run(args []string) int {
	if len(args) > 0 {
		if cmd, ok := subcommands[args[0]]; ok {
			return cmd(args[1:])
		}
	}
	fs := flag.NewFlagSet("xdp_udp_ports", flag.ContinueOnError)
	configFile := fs.String("config", "", "path to the config file with one [[inputs.xdp_udp_ports]] table")
	pollInterval := fs.Duration("poll_interval", time.Second, "how often to gather and print metrics")
	debug := fs.Bool("debug", false, "log debug messages too")
	pollDisabled := fs.Bool("poll_interval_disabled", false,
		"gather only when a line arrives on stdin (Telegraf's execd with signal = \"STDIN\")")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: xdp_udp_ports -config FILE [-poll_interval 1s | -poll_interval_disabled] [-debug]\n")
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for name := range subcommands {
				if !yield(name) {
					return
				}
			}
		}) {
			fmt.Fprintf(fs.Output(), "       xdp_udp_ports %s -h\n", name)
		}
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseFlags(fs, args, os.Stdout, os.Stderr, subcommandHint(args)); !ok {
		return code
	}
	logger := cli.NewLogger(os.Stderr, *debug)
	if !*pollDisabled && *pollInterval <= 0 {
		logger.Errorf("-poll_interval: must be positive, got %s (-poll_interval_disabled gathers only on a line on stdin)", *pollInterval)
		return 2
	}
	if *pollDisabled {
		*pollInterval = 0
	}
	p, err := cli.LoadConfig(*configFile)
	if err != nil {
		logger.Error(err.Error())
		return 1
	}
	p.Log = logger
	if err := p.Init(); err != nil {
		logger.Error(err.Error())
		return 1
	}
	e := &execd{plugin: p, log: logger, stdin: os.Stdin, stdout: os.Stdout, poll: *pollInterval}
	if err := e.run(); err != nil {
		logger.Error(err.Error())
		return 1
	}
	return 0
}

// subcommandHint explains an argument after the flags that names a
// subcommand: "-config c.conf top" is not "top -config c.conf".
func subcommandHint(args []string) func(arg string) string {
	return func(arg string) string {
		if _, ok := subcommands[arg]; !ok {
			return ""
		}
		i := slices.Index(args, arg)
		fixed := append(append([]string{arg}, args[:i]...), args[i+1:]...)
		return fmt.Sprintf("; a subcommand comes first: xdp_udp_ports %s", strings.Join(fixed, " "))
	}
}
