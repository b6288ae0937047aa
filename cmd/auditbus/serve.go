package main

import (
	"context"
	"io"

	"github.com/auditbus/auditbus/pkg/daemon"
)

// runServe runs `auditbus serve`: the router daemon, configured from
// AUDITBUS_* variables, until ctx ends (SIGINT or SIGTERM).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	daemon.Version = version
	return daemon.Main(ctx, args, stdout, stderr)
}
