package workload

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// RunTimeout bounds one trial: a system that has not handled every event by
// then has failed.
const RunTimeout = 2 * time.Minute

// Comparison is the side-by-side run every bench-* harness makes: each
// system is warmed up once with a small run, then every round runs each
// system in turn, each on a freshly set up trial of the same workload, so
// that drift of the machine hits all of them alike.
type Comparison struct {
	// Systems[0] is auditbus, Systems[1] its peer; the ratio is the
	// former's median rate over the latter's. A zero Pacing runs a system
	// with Trial.Run (one publisher of the workload's batches).
	Systems      []Paced
	WarmupEvents int  // events of each system's warm-up run
	Rounds       int  // measured rounds
	ListRounds   bool // list every round's rate on each median line
}

// Run runs the comparison on w and prints every round, each system's
// median and, as its last line, "ratio: X.XX". It stops at the first trial
// that fails, loses, duplicates or corrupts an event.
func (c Comparison) Run(out io.Writer, w *Workload) error {
	warm := w.Config
	warm.Events = min(w.Events, c.WarmupEvents)
	ww, err := New(warm)
	if err != nil {
		return err
	}
	for _, s := range c.Systems {
		if _, err := s.once(ww); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	rates := make([][]float64, len(c.Systems))
	for r := 1; r <= c.Rounds; r++ {
		var line strings.Builder
		fmt.Fprintf(&line, "round %d:", r)
		for i, s := range c.Systems {
			res, err := s.once(w)
			if err != nil {
				return fmt.Errorf("round %d: %w", r, err)
			}
			rates[i] = append(rates[i], res.PerSecond())
			fmt.Fprintf(&line, " %s %.0f events/s (%v);", s.Name, res.PerSecond(), res.Elapsed.Round(time.Millisecond))
		}
		fmt.Fprintln(out, strings.TrimSuffix(line.String(), ";"))
	}

	medians := make([]float64, len(c.Systems))
	for i, s := range c.Systems {
		medians[i] = median(rates[i])
		if !c.ListRounds {
			fmt.Fprintf(out, "%s: %.0f events/s (median of %d)\n", s.Name, medians[i], c.Rounds)
			continue
		}
		all := make([]string, len(rates[i]))
		for j, v := range rates[i] {
			all[j] = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(out, "%s: %.0f events/s (median of %d; rounds: %s)\n", s.Name, medians[i], c.Rounds, strings.Join(all, ", "))
	}
	fmt.Fprintf(out, "ratio: %.2f\n", medians[0]/medians[1])
	return nil
}

// once sets up, runs, verifies and closes one trial of s on w. After a
// timeout it returns without closing: a stuck system may not close either,
// and the harness exits anyway.
func (s Paced) once(w *Workload) (Result, error) {
	tr, err := s.Setup(w)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), RunTimeout, fmt.Errorf("timed out after %v", RunTimeout))
	defer cancel()
	var res Result
	if s.Pacing.Publishers == 0 {
		res, err = tr.Run(ctx)
	} else {
		res, err = tr.RunPaced(ctx, s.Pacing)
	}
	if err == nil {
		err = tr.Verify()
	}
	if err != nil && ctx.Err() != nil {
		return res, err
	}
	if cerr := tr.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: close: %w", s.Name, cerr)
	}
	return res, err
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
