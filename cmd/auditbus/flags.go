package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// helpText is the --help of one command: what comes before the flag list
// and what comes after it (examples, exit codes).
type helpText struct {
	usage, after string
}

// newFlagSet returns a FlagSet that reports parse errors to stderr and
// prints nothing else itself: parseArgs prints the help.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses args with fs, letting flags and positional arguments
// mix (auditbus query get ID --source S); everything after "--" is
// positional. It returns the positional arguments, or an exit code and
// false: exitOK after --help, which prints the help to stdout, or exitUsage
// after a parse error, which FlagSet has reported to stderr.
func parseArgs(fs *flag.FlagSet, args []string, help helpText, s stdio) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printHelp(fs, help, s.out)
				return nil, exitOK, false
			}
			fmt.Fprintf(s.errOut, "auditbus %s --help shows the flags\n", fs.Name())
			return nil, exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		if stop := len(args) - len(rest) - 1; stop >= 0 && args[stop] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printHelp writes a command's help with its flags to w.
func printHelp(fs *flag.FlagSet, help helpText, w io.Writer) {
	fmt.Fprint(w, strings.TrimLeft(help.usage, "\n"))
	fmt.Fprintln(w, "\nFlags:")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		if def := f.DefValue; def != "" && def != "0" && def != "false" {
			usage += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, usage)
	})
	fmt.Fprint(w, help.after)
}

// usageError prints a usage error of command name and returns exitUsage.
func usageError(s stdio, name, format string, args ...any) int {
	fmt.Fprintf(s.errOut, "auditbus %s: %s (auditbus %s --help)\n", name, fmt.Sprintf(format, args...), name)
	return exitUsage
}

// failure prints a runtime error of command name and returns exitFailure.
func failure(s stdio, name string, err error) int {
	fmt.Fprintf(s.errOut, "auditbus %s: %v\n", name, err)
	return exitFailure
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}
