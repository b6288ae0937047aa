//go:build !race

package sinktest

// raceEnabled: see race.go.
const raceEnabled = false
