//go:build race

package sinktest

// raceEnabled: the race detector slows a store written in instrumented
// Go (SQLite transpiled to Go) about tenfold, so the largest cases write
// less.
const raceEnabled = true
