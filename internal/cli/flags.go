package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ParseFlags parses args with fs by the rules every mode shares: -h (or
// -help) prints fs.Usage on stdout and returns exit code 0; a bad flag
// or an argument after the flags is one E! line on stderr (with hint(arg)
// appended for an argument, when hint is set) and exit code 2. ok is true
// when the mode goes on. fs.Usage must write to fs.Output().
func ParseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, hint func(arg string) string) (code int, ok bool) {
	fs.SetOutput(io.Discard) // the flag package's own messages
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return 0, false
	}
	if err == nil && fs.NArg() > 0 {
		msg := fmt.Sprintf("unexpected argument %q after the flags", fs.Arg(0))
		if hint != nil {
			msg += hint(fs.Arg(0))
		}
		err = errors.New(msg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "E! %s: %v (%s -h shows the usage)\n", fs.Name(), err, fs.Name())
		return 2, false
	}
	return 0, true
}
