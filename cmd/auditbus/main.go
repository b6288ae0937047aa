// Command auditbus is the one auditbus binary: the router daemon (serve)
// and the client commands that publish events, tail a topic, query the
// audit store and replay or redrive stored events from the command line.
//
// Exit codes, the same for every command, so that scripts can rely on them:
//
//	0  success
//	1  runtime error: the server or broker refused or failed, or a
//	   connection broke
//	2  usage error: a bad flag, argument or AUDITBUS_* variable
//	3  not found (auditbus query get ID, auditbus replay status ID)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Exit codes of every command.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; without it the module version or the
// VCS revision from the build information is shown.
var version = ""

// stdio is where a command reads and writes.
type stdio struct {
	in          io.Reader
	out, errOut io.Writer
}

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, s stdio) int
}

var commands = []command{
	{"serve", "run the router daemon (configured from AUDITBUS_* variables)",
		func(ctx context.Context, args []string, s stdio) int { return runServe(ctx, args, s.out, s.errOut) }},
	{"publish", "publish events to a daemon over HTTP or straight to a transport", runPublish},
	{"tail", "print the events of a transport topic as they arrive", runTail},
	{"query", "search the audit store of a daemon, or fetch one event", runQuery},
	{"replay", "publish stored events again, follow, list and cancel replays", runReplay},
	{"redrive", "deliver a route's dead-lettered events again after a fix", runRedrive},
	{"verify", "check the ledger's Merkle logs and signed checkpoints, or one event", runVerify},
	{"keygen", "make the key pair that signs the ledger's checkpoints", runKeygen},
	{"token", "mint, attenuate and inspect Macaroon bearer tokens", runToken},
	{"version", "print the version", func(_ context.Context, _ []string, s stdio) int {
		fmt.Fprintln(s.out, "auditbus", versionString())
		return exitOK
	}},
}

const mainUsage = `auditbus: a broker-agnostic CloudEvents bus with an audit store.

Usage:
  auditbus <command> [flags]
  auditbus help <command>     the flags and examples of one command
  auditbus --version

Commands:
%s
Exit codes: 0 success, 1 runtime or server error, 2 usage error,
3 not found (query get, replay status); verify exits 1 when anything
does not verify.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, errOut: os.Stderr})
	stop()
	os.Exit(code)
}

// run dispatches args to a command and returns the exit code.
func run(ctx context.Context, args []string, s stdio) int {
	if len(args) == 0 {
		printMainUsage(s.errOut)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		printMainUsage(s.out)
		return exitOK
	case "-version", "--version":
		name = "version"
	case "help":
		if len(rest) == 0 {
			printMainUsage(s.out)
			return exitOK
		}
		name, rest = rest[0], []string{"--help"}
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, rest, s)
		}
	}
	fmt.Fprintf(s.errOut, "auditbus: unknown command %q; the commands are serve, publish, tail, query, replay, redrive, verify, keygen, token and version (auditbus --help)\n", name)
	return exitUsage
}

func printMainUsage(w io.Writer) {
	list := ""
	for _, c := range commands {
		list += fmt.Sprintf("  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, mainUsage, list)
}

// versionString is version, or what the Go build recorded.
func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && (v == "" || v == "(devel)") {
			v = "(devel) " + s.Value
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v + " " + info.GoVersion
}
