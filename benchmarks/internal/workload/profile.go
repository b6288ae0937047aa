package workload

import (
	"os"
	"runtime/pprof"
)

// StartCPUProfile writes a CPU profile to path until the returned stop is
// called; with path empty it profiles nothing and stop does nothing. It is
// the -cpuprofile flag of the benchmark commands.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
