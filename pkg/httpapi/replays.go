package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/auditbus/auditbus/pkg/replay"
)

// Error codes of the replay endpoints.
const (
	// CodeBadRequest: a field of the JSON body is missing, unknown or has
	// a bad value; the message names it ("filter.to", "destination").
	CodeBadRequest = "bad_request"
	// CodeNotRunning: the job is not in a state the operation applies to
	// (cancel a finished job, retry a running one).
	CodeNotRunning = "not_running"
	// CodeTooManyJobs: AUDITBUS_REPLAY_MAX_JOBS jobs are running; 429
	// with Retry-After.
	CodeTooManyJobs = "too_many_jobs"
)

// DestinationChecker is a Destinations that can check a destination
// without keeping anything for it, as a dry run wants; without it a dry
// run resolves the destination with Target.
type DestinationChecker interface {
	Check(d ReplayDestination) error
}

// Destinations resolves the destinations of replay requests; the daemon
// implements it over its transports, its routes and its job directory.
type Destinations interface {
	// Target returns the target d names. An error that wraps a
	// *replay.FieldError (an unknown transport, route or destination, a
	// bad webhook URL) is the client's and is answered 400 naming the
	// field; any other is the server's.
	Target(d ReplayDestination) (replay.Target, error)
	// RouteDestinations lists the names of a route's destinations, for a
	// redrive that names none; an unknown route is a *replay.FieldError
	// on "route".
	RouteDestinations(route string) ([]string, error)
}

// replayRoutes are the replay endpoints, registered when Options.Replays
// is set.
func (s *Server) replayRoutes() []struct {
	pattern string
	h       http.Handler
} {
	// Starting a replay or a redrive reads the store (it publishes what it
	// reads where the caller says), so it takes audit:read as well;
	// cancel and retry read nothing, and answer a replay:write-only
	// caller with the job's id and state alone (see jobAnswer).
	start := s.o.Verifier.Require(auth.ScopeReplayWrite + " " + auth.ScopeAuditRead)
	write := s.o.Verifier.Require(auth.ScopeReplayWrite)
	read := s.o.Verifier.Require(auth.ScopeAuditRead)
	return []struct {
		pattern string
		h       http.Handler
	}{
		{"POST /v1/replays", start(http.HandlerFunc(s.startReplay))},
		{"GET /v1/replays", read(http.HandlerFunc(s.listReplays))},
		{"GET /v1/replays/{id}", read(http.HandlerFunc(s.getReplay))},
		{"DELETE /v1/replays/{id}", write(http.HandlerFunc(s.cancelReplay))},
		{"POST /v1/replays/{id}/retry", write(http.HandlerFunc(s.retryReplay))},
		{"POST /v1/redrives", start(http.HandlerFunc(s.redrive))},
		{"/v1/replays", notAllowed("GET, HEAD, POST")},
		{"/v1/replays/{id}", notAllowed("GET, HEAD, DELETE")},
		{"/v1/replays/{id}/retry", notAllowed("POST")},
		{"/v1/redrives", notAllowed("POST")},
	}
}

// startReplay is POST /v1/replays, and its dry run with ?dry_run=true.
func (s *Server) startReplay(w http.ResponseWriter, r *http.Request) {
	dry, err := dryRun(r.URL.RawQuery)
	if err != nil {
		badQuery(w, err)
		return
	}
	var body ReplayRequest
	if !s.readBody(w, r, replayFields, &body) {
		return
	}
	q, err := body.Filter.query()
	if err != nil {
		s.badReplay(w, r, err)
		return
	}
	q.Within = readerWithin(w, r)
	var target replay.Target
	if body.Destination != nil || !dry {
		if body.Destination == nil {
			s.badReplay(w, r, &replay.FieldError{Field: "destination", Reason: "required; " + destinationForms})
			return
		}
		if c, ok := s.o.Destinations.(DestinationChecker); ok && dry {
			err = body.Destination.check()
			if err == nil {
				err = c.Check(*body.Destination)
			}
		} else {
			target, err = s.target(*body.Destination)
		}
		if err != nil {
			s.replayFailed(w, r, "resolve destination", err)
			return
		}
	}
	if dry {
		n, err := s.o.Replays.Count(r.Context(), q)
		if err != nil {
			s.replayFailed(w, r, "count", err)
			return
		}
		writeValue(w, http.StatusOK, struct {
			Events   int64           `json:"events"`
			Narrowed json.RawMessage `json:"narrowed,omitempty"`
		}{n, narrowedJSON(q.Within)})
		return
	}
	req := replay.Request{Filter: q, Destination: target, Rate: body.Rate, Name: body.Name}
	if d := body.Destination; d.Route != "" {
		req.Route, req.RouteDestination = d.Route, d.Destination
	}
	j, err := s.o.Replays.Start(r.Context(), req)
	if err != nil {
		s.replayFailed(w, r, "start", err)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "replay started", s.replayAttrs(r, slog.String("job", j.ID),
		slog.String("destination", target.String()), slog.Float64("rate", body.Rate))...)
	w.Header().Set("Location", "/v1/replays/"+url.PathEscape(j.ID))
	writeValue(w, http.StatusAccepted, jobView(j))
}

// target checks d's form and resolves it.
func (s *Server) target(d ReplayDestination) (replay.Target, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return s.o.Destinations.Target(d)
}

// dryRun reads the only parameter POST /v1/replays takes.
func dryRun(rawQuery string) (bool, error) {
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return false, fmt.Errorf("the query string is malformed: %w", err)
	}
	dry := false
	for k, vals := range v {
		switch {
		case k != "dry_run":
			return false, fmt.Errorf("parameter %q: unknown; POST /v1/replays accepts only dry_run=true", clip(k))
		case len(vals) != 1:
			return false, fmt.Errorf("parameter \"dry_run\": given %d times; give it once", len(vals))
		case vals[0] == "true" || vals[0] == "1":
			dry = true
		case vals[0] == "false" || vals[0] == "0":
		default:
			return false, fmt.Errorf("parameter \"dry_run\": %q is neither true nor false", clip(vals[0]))
		}
	}
	return dry, nil
}

// listReplays is GET /v1/replays: a page of jobs, newest first.
func (s *Server) listReplays(w http.ResponseWriter, r *http.Request) {
	after, limit, err := jobPage(r.URL.RawQuery)
	if err != nil {
		badQuery(w, err)
		return
	}
	within := readerWithin(w, r)
	jobs, next := s.o.Replays.Page(after, limit)
	out := replayList{Replays: make([]ReplayJob, 0, len(jobs)), Next: next, Narrowed: narrowingOf(within)}
	for _, j := range jobs {
		// A narrowed reader sees the jobs that read no more than it may:
		// their errors and progress name events.
		if within.Covers(j.Request.Filter.Within) {
			out.Replays = append(out.Replays, jobView(j))
		}
	}
	writeValue(w, http.StatusOK, out)
}

// jobPage reads the parameters of GET /v1/replays: limit (1 to
// replay.MaxPage, default 100) and after (a job id, from next).
func jobPage(rawQuery string) (after string, limit int, err error) {
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", 0, fmt.Errorf("the query string is malformed: %w", err)
	}
	for k, vals := range v {
		if len(vals) != 1 {
			return "", 0, fmt.Errorf("parameter %q: given %d times; give it once", clip(k), len(vals))
		}
		switch k {
		case "after":
			after = vals[0]
		case "limit":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 1 || n > replay.MaxPage {
				return "", 0, fmt.Errorf("parameter \"limit\": %q is not a number from 1 to %d", clip(vals[0]), replay.MaxPage)
			}
			limit = n
		default:
			return "", 0, fmt.Errorf("parameter %q: unknown; GET /v1/replays accepts limit and after", clip(k))
		}
	}
	return after, limit, nil
}

// getReplay is GET /v1/replays/{id}.
func (s *Server) getReplay(w http.ResponseWriter, r *http.Request) {
	j, err := s.visibleJob(w, r)
	if err != nil {
		s.replayFailed(w, r, "get", err)
		return
	}
	writeValue(w, http.StatusOK, jobView(j))
}

// cancelReplay is DELETE /v1/replays/{id}: it answers once the batch in
// flight is finished, with the job now cancelled.
func (s *Server) cancelReplay(w http.ResponseWriter, r *http.Request) {
	j, err := s.visibleJob(w, r)
	if err == nil {
		j, err = s.o.Replays.Cancel(j.ID)
	}
	if err != nil {
		s.replayFailed(w, r, "cancel", err)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "replay cancelled", s.replayAttrs(r, slog.String("job", j.ID))...)
	writeValue(w, http.StatusOK, jobAnswer(r, j))
}

// retryReplay is POST /v1/replays/{id}/retry: a failed or cancelled job
// goes on from its checkpoint.
func (s *Server) retryReplay(w http.ResponseWriter, r *http.Request) {
	j, err := s.visibleJob(w, r)
	if err == nil {
		j, err = s.o.Replays.Retry(j.ID)
	}
	if err != nil {
		s.replayFailed(w, r, "retry", err)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "replay retried", s.replayAttrs(r, slog.String("job", j.ID))...)
	writeValue(w, http.StatusAccepted, jobAnswer(r, j))
}

// visibleJob is the job of the request's path, or an error wrapping
// replay.ErrNotFound when there is none, or when it reads more than the
// reader may: to a narrowed reader, another's wider job does not exist.
func (s *Server) visibleJob(w http.ResponseWriter, r *http.Request) (replay.Job, error) {
	id := r.PathValue("id")
	j, err := s.o.Replays.Get(id)
	if err == nil && !readerWithin(w, r).Covers(j.Request.Filter.Within) {
		return replay.Job{}, fmt.Errorf("replay: job %q: %w", id, replay.ErrNotFound)
	}
	return j, err
}

// jobState is what a caller without audit:read learns of a job it
// cancelled or retried: nothing the job read from the store (its filter,
// progress, errors, the events they name).
type jobState struct {
	ID    string       `json:"id"`
	State replay.State `json:"state"`
}

// jobAnswer is the job's whole view for a caller that may read the audit
// store (or when auth is off), its id and state for any other.
func jobAnswer(r *http.Request, j replay.Job) any {
	if p, ok := auth.FromContext(r.Context()); ok && !p.HasScope(auth.ScopeAuditRead) {
		return jobState{ID: j.ID, State: j.State}
	}
	return jobView(j)
}

// redrive is POST /v1/redrives: one job per destination redriven.
func (s *Server) redrive(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		badQuery(w, errors.New("POST /v1/redrives takes no parameters; the request is the JSON body"))
		return
	}
	var body RedriveRequest
	if !s.readBody(w, r, redriveFields, &body) {
		return
	}
	rr := replay.RedriveRequest{Route: body.Route, Rate: body.Rate, Name: body.Name}
	var err error
	if rr.From, err = fieldTime("from", body.From); err == nil {
		rr.To, err = fieldTime("to", body.To)
	}
	if err == nil && body.Route == "" {
		err = &replay.FieldError{Field: "route", Reason: "required: the route whose dead-lettered events to deliver again"}
	}
	if err != nil {
		s.badReplay(w, r, err)
		return
	}
	dests := []string{body.Destination}
	if body.Destination == "" {
		if dests, err = s.o.Destinations.RouteDestinations(body.Route); err != nil {
			s.replayFailed(w, r, "redrive", err)
			return
		}
	}
	// Resolve and check every job before starting any.
	within := readerWithin(w, r)
	reqs := make([]replay.Request, 0, len(dests))
	for _, d := range dests {
		t, err := s.o.Destinations.Target(ReplayDestination{Route: body.Route, Destination: d})
		if err != nil {
			s.replayFailed(w, r, "redrive", redriveField(err))
			return
		}
		one := rr
		one.Destination = d
		req, err := one.Request(t)
		if err != nil {
			s.badReplay(w, r, redriveField(err))
			return
		}
		req.Filter.Within = within
		if body.Destination == "" {
			// Only the destinations that have something to redrive.
			n, err := s.o.Replays.Count(r.Context(), req.Filter)
			if err != nil {
				s.replayFailed(w, r, "count", err)
				return
			}
			if n == 0 {
				continue
			}
		}
		reqs = append(reqs, req)
	}
	out := redriveAnswer{Jobs: make([]ReplayJob, 0, len(reqs)), Narrowed: narrowedJSON(within)}
	for _, req := range reqs {
		j, err := s.o.Replays.Start(r.Context(), req)
		if err != nil {
			s.replayFailed(w, r, "redrive", err)
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "redrive started", s.replayAttrs(r, slog.String("job", j.ID),
			slog.String("route", body.Route), slog.String("destination", req.RouteDestination))...)
		out.Jobs = append(out.Jobs, jobView(j))
	}
	if len(out.Jobs) == 0 {
		// Nothing to redrive: no job started.
		writeValue(w, http.StatusOK, out)
		return
	}
	if len(out.Jobs) == 1 {
		w.Header().Set("Location", "/v1/replays/"+url.PathEscape(out.Jobs[0].ID))
	}
	writeValue(w, http.StatusAccepted, out)
}

// redriveField renames the fields of a route destination's errors to the
// redrive body's.
func redriveField(err error) error {
	if fe, ok := errors.AsType[*replay.FieldError](err); ok {
		switch fe.Field {
		case "destination.route":
			return &replay.FieldError{Field: "route", Reason: fe.Reason}
		case "destination.destination":
			return &replay.FieldError{Field: "destination", Reason: fe.Reason}
		case "filter.from", "filter.to":
			return &replay.FieldError{Field: strings.TrimPrefix(fe.Field, "filter."), Reason: strings.ReplaceAll(fe.Reason, "filter.", "")}
		}
	}
	return err
}

// readBody reads the JSON body into v; on false the answer is sent.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, shape fields, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			apierror.Write(w, http.StatusUnsupportedMediaType, cehttp.CodeUnsupportedMediaType,
				fmt.Sprintf("Content-Type %q: send the request as application/json", clip(ct)))
			return false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			apierror.Write(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", s.o.MaxBodyBytes))
			return false
		}
		apierror.Write(w, http.StatusBadRequest, cehttp.CodeUnreadableBody, "the body could not be read: "+err.Error())
		return false
	}
	if err := decodeBody(body, shape, v); err != nil {
		if errors.Is(err, errMalformed) {
			apierror.Write(w, http.StatusBadRequest, cehttp.CodeMalformedJSON, err.Error())
			return false
		}
		s.badReplay(w, r, err)
		return false
	}
	return true
}

// badReplay answers 400 bad_request for a *replay.FieldError.
func (s *Server) badReplay(w http.ResponseWriter, r *http.Request, err error) {
	msg := err.Error()
	if fe, ok := errors.AsType[*replay.FieldError](err); ok {
		msg = fmt.Sprintf("field %q: %s", fe.Field, fe.Reason)
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "replay request refused", s.replayAttrs(r, slog.String("error", msg))...)
	apierror.Write(w, http.StatusBadRequest, CodeBadRequest, msg)
}

// replayFailed answers an error of the replay manager or the resolver.
func (s *Server) replayFailed(w http.ResponseWriter, r *http.Request, op string, err error) {
	id := r.PathValue("id")
	switch {
	case errors.Is(err, replay.ErrBadRequest):
		s.badReplay(w, r, err)
	case errors.Is(err, replay.ErrNotFound):
		apierror.Write(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no replay job has the id %q (GET /v1/replays lists them)", clip(id)))
	case errors.Is(err, replay.ErrNotRunning):
		j, gerr := s.o.Replays.Get(id)
		state := "not running"
		if gerr == nil {
			state = string(j.State)
		}
		apierror.Write(w, http.StatusConflict, CodeNotRunning, fmt.Sprintf("replay job %q is %s: %s applies to %s", clip(id), state, op, map[string]string{
			"cancel": "running jobs only", "retry": "failed or cancelled jobs only"}[op]))
	case errors.Is(err, replay.ErrTooManyJobs):
		w.Header().Set("Retry-After", retryAfter)
		apierror.Write(w, http.StatusTooManyRequests, CodeTooManyJobs,
			"as many replay jobs are running as the server allows (AUDITBUS_REPLAY_MAX_JOBS); start this one once another has ended, or cancel one")
	case errors.Is(err, replay.ErrClosed):
		w.Header().Set("Retry-After", retryAfter)
		apierror.Write(w, http.StatusServiceUnavailable, CodeUnavailable, "the server is shutting down; try again once it is back")
	default:
		if op == "count" {
			s.storeFailed(w, r, "replay count", err)
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelError, "replay "+op+" failed", s.replayAttrs(r, slog.Any("error", err))...)
		if op == "retry" && id != "" {
			// Retry refuses a job that is still running with a plain error.
			if j, gerr := s.o.Replays.Get(id); gerr == nil && !j.Final() {
				apierror.Write(w, http.StatusConflict, CodeNotRunning, fmt.Sprintf("replay job %q is still running: retry applies to failed or cancelled jobs only", clip(id)))
				return
			}
		}
		apierror.Write(w, http.StatusInternalServerError, CodeInternal, fmt.Sprintf("replay %s: %v", op, err))
	}
}

// replayAttrs are the log attributes of a replay request: who sent it,
// then extra.
func (s *Server) replayAttrs(r *http.Request, extra ...slog.Attr) []slog.Attr {
	a := make([]slog.Attr, 0, 2+len(extra))
	if p, ok := auth.FromContext(r.Context()); ok {
		a = append(a, slog.String("subject", p.Subject))
	}
	a = append(a, slog.String("remote", r.RemoteAddr))
	return append(a, extra...)
}

// writeValue answers with v as JSON.
func writeValue(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		apierror.Write(w, http.StatusInternalServerError, CodeInternal, "the answer could not be encoded: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
