package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/replay"
	"golang.org/x/term"
)

// How often a followed job is asked for its progress: a bar on a terminal
// moves smoothly; plain lines come about once a second.
const (
	barInterval  = 200 * time.Millisecond
	lineInterval = time.Second
)

// barWidth is the most cells the bar itself takes.
const barWidth = 30

// terminal reports whether w is a terminal, and its width in columns (0
// when unknown).
func terminal(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return true, 0
	}
	return true, width
}

// followJob shows j's progress until it ends: a bar redrawn in place on a
// terminal, a line a second otherwise. It returns exitOK when the job is
// done, exitFailure when it failed or was cancelled, or when following
// stopped first (ctx ended, the daemon stopped answering).
func followJob(ctx context.Context, c *client, j httpapi.ReplayJob, s stdio) int {
	tty, width := terminal(s.out)
	every := lineInterval
	if tty {
		every = barInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	u := c.endpoint(nil, "v1", "replays", j.ID)
	for {
		if tty {
			fmt.Fprint(s.out, "\r"+fit(barLine(j), width)+"\x1b[K")
		} else if !jobFinal(j) {
			fmt.Fprintln(s.out, progressLine(j))
		}
		if jobFinal(j) {
			break
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(s.out)
			}
			fmt.Fprintf(s.errOut, "auditbus replay: stopped following; job %s goes on in the daemon (auditbus replay status %s --follow; auditbus replay cancel %s)\n", j.ID, j.ID, j.ID)
			return exitFailure
		case <-tick.C:
		}
		if err := c.getJSON(ctx, u, &j); err != nil {
			if ctx.Err() != nil {
				continue // said above
			}
			if tty {
				fmt.Fprintln(s.out)
			}
			return failure(s, "replay", fmt.Errorf("following job %s: %w", j.ID, err))
		}
	}
	if tty {
		fmt.Fprintln(s.out)
	}
	fmt.Fprintln(s.out, progressLine(j))
	if j.State != replay.Done {
		if j.Error != "" {
			fmt.Fprintf(s.errOut, "auditbus replay: job %s %s: %s\n", j.ID, j.State, oneLine(j.Error, 0))
		}
		return exitFailure
	}
	if j.Progress.Failed > 0 {
		fmt.Fprintf(s.errOut, "auditbus replay: %d events were given up on: auditbus replay status %s lists them\n", j.Progress.Failed, j.ID)
	}
	return exitOK
}

// progressLine is one line about j: its state, counts, rate and time left
// while it runs, how long it took once it stopped.
func progressLine(j httpapi.ReplayJob) string {
	p := j.Progress
	var b strings.Builder
	fmt.Fprintf(&b, "replay %s: %s, %s of %s events", j.ID, j.State, thousands(p.Done), totalText(p.Total))
	if p.Total > 0 {
		fmt.Fprintf(&b, " (%d%%)", percent(p))
	}
	fmt.Fprintf(&b, ", %s failed", thousands(p.Failed))
	if p.Skipped > 0 {
		fmt.Fprintf(&b, ", %s skipped", thousands(p.Skipped))
	}
	fmt.Fprintf(&b, ", %s events/s", thousands(int64(p.Rate+0.5)))
	if j.State == replay.Running {
		if p.ETA > 0 {
			b.WriteString(", ETA " + eta(p.ETA))
		}
	} else {
		fmt.Fprintf(&b, ", in %s", j.Updated.Sub(j.Created).Round(10*time.Millisecond))
	}
	return b.String()
}

// barLine is the progress bar of j:
//
//	[##########----------]  12,000/20,000 events  60%  4,012 events/s  ETA 3s
func barLine(j httpapi.ReplayJob) string {
	p := j.Progress
	filled := 0
	if p.Total > 0 {
		filled = min(barWidth, int(int64(barWidth)*min(p.Done+p.Failed+p.Skipped, p.Total)/p.Total))
	} else if p.Total == 0 && j.State == replay.Done {
		filled = barWidth
	}
	var b strings.Builder
	b.WriteString("[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "]")
	fmt.Fprintf(&b, "  %s/%s events", thousands(p.Done), totalText(p.Total))
	if p.Total > 0 {
		fmt.Fprintf(&b, "  %3d%%", percent(p))
	}
	fmt.Fprintf(&b, "  %s events/s", thousands(int64(p.Rate+0.5)))
	if p.Failed > 0 {
		fmt.Fprintf(&b, "  %s failed", thousands(p.Failed))
	}
	switch {
	case j.State != replay.Running:
		b.WriteString("  " + string(j.State))
	case p.ETA > 0:
		b.WriteString("  ETA " + eta(p.ETA))
	}
	return b.String()
}

// fit cuts line to the terminal's width, so that it never wraps (a
// wrapped line cannot be redrawn with a carriage return).
func fit(line string, width int) string {
	if width > 1 && len(line) >= width {
		return line[:width-1]
	}
	return line
}

// eta shows a time left in whole seconds, "<1s" below one.
func eta(d time.Duration) string {
	if d < time.Second {
		return "<1s"
	}
	return d.Round(time.Second).String()
}

func percent(p replay.Progress) int64 {
	return min(100, 100*(p.Done+p.Failed+p.Skipped)/p.Total)
}

func totalText(n int64) string {
	if n < 0 {
		return "?"
	}
	return thousands(n)
}

// thousands writes n with commas between groups of three digits.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
