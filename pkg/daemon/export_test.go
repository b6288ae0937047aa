package daemon

import "github.com/auditbus/auditbus/sinks"

// StoreOf is the audit store of a running daemon, for tests that read
// what it recorded through the sinks API.
func StoreOf(d *Daemon) sinks.Store { return d.store }
