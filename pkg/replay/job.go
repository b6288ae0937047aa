package replay

import (
	"encoding/json"
	"math"
	"time"
)

// State is where a job is in its life.
type State string

// Job states. Running is the only one that changes; the others are final.
const (
	// Running: the job is publishing, or was when its process stopped;
	// Manager.Resume continues it from its checkpoint.
	Running State = "running"
	// Done: every selected version was published or given up on (see
	// Progress.Failed and Job.Errors).
	Done State = "done"
	// Failed: the job stopped on an error it could not get past (the audit
	// store, a destination that stayed unreachable with no dead letter, a
	// target that could not be resolved); Job.Error says which.
	// Checkpoint is kept: nothing after it was skipped.
	Failed State = "failed"
	// Cancelled: Manager.Cancel stopped the job.
	Cancelled State = "cancelled"
)

// Progress counts a job's events.
type Progress struct {
	// Total is the number of versions the filter selected when the job
	// started, or -1 while they are being counted. Versions stored later
	// in the window are replayed too, so Done+Failed+Skipped may end
	// above it.
	Total int64 `json:"total"`
	// Done is the events the destination accepted.
	Done int64 `json:"done"`
	// Failed is the events given up on: dead-lettered, or reported in
	// Job.Errors when the request has no dead letter.
	Failed int64 `json:"failed"`
	// Skipped is the selected versions left out because they are copies
	// made by replays (see Request.Filter).
	Skipped int64 `json:"skipped"`
	// Rate is events handled per second since the job (re)started.
	Rate float64 `json:"rate"`
	// ETA is the estimated time left, 0 when unknown or finished.
	ETA time.Duration `json:"-"`
}

// progressJSON adds the ETA in seconds.
type progressJSON struct {
	Total      int64   `json:"total"`
	Done       int64   `json:"done"`
	Failed     int64   `json:"failed"`
	Skipped    int64   `json:"skipped,omitempty"`
	Rate       float64 `json:"rate"`
	ETASeconds float64 `json:"eta_seconds"`
}

// MarshalJSON writes the progress with "eta_seconds".
func (p Progress) MarshalJSON() ([]byte, error) {
	return json.Marshal(progressJSON{p.Total, p.Done, p.Failed, p.Skipped, round3(p.Rate), round3(p.ETA.Seconds())})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Progress) UnmarshalJSON(b []byte) error {
	var w progressJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Progress{Total: w.Total, Done: w.Done, Failed: w.Failed, Skipped: w.Skipped, Rate: w.Rate,
		ETA: time.Duration(w.ETASeconds * float64(time.Second))}
	return nil
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// JobError is one failure a job reports.
type JobError struct {
	Time time.Time `json:"time"`
	// Source and ID identify the event given up on; both are empty for a
	// failure of the whole job.
	Source string `json:"source,omitempty"`
	ID     string `json:"id,omitempty"`
	// Attempts is how many times the event was offered to the destination.
	Attempts int `json:"attempts,omitempty"`
	// DeadLettered says the event was parked in the request's dead letter.
	DeadLettered bool   `json:"deadlettered,omitempty"`
	Message      string `json:"message"`
}

// Job is a snapshot of a replay job. Its JSON form, which the job
// directory keeps and the HTTP API can show, holds the request with its
// targets by name.
type Job struct {
	// ID is a UUIDv7: ids sort by creation time.
	ID      string  `json:"id"`
	Request Request `json:"request"`
	State   State   `json:"state"`
	// Progress counts the events so far.
	Progress Progress `json:"progress"`
	// Errors holds the first MaxErrors failures; ErrorCount counts all.
	Errors     []JobError `json:"errors,omitempty"`
	ErrorCount int64      `json:"error_count"`
	// Error says why a Failed job stopped.
	Error string `json:"error,omitempty"`
	// Checkpoint is the position after the last batch handled, whose
	// ledger entries are durable (an opaque sinks cursor: time, source,
	// id and digest), "" before the first.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Created and Updated are when the job was started and last changed.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// jobFile reads a job's JSON form back: the request's targets come back
// as names.
type jobFile struct {
	Job
	Request requestJSON `json:"request"`
}

// Final reports whether the job has stopped for good.
func (j *Job) Final() bool { return j.State != Running }

// clone copies j so a snapshot shares nothing mutable with the live job.
func (j *Job) clone() Job {
	c := *j
	c.Errors = append([]JobError(nil), j.Errors...)
	return c
}
