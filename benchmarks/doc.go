// Package benchmarks compares auditbus with other Go messaging libraries.
// It is its own module so that their dependencies stay out of auditbus's
// go.mod. The workload lives in internal/workload; cmd/bench-mem runs it as
// a side-by-side harness and mem_test.go as testing.B benchmarks.
package benchmarks
