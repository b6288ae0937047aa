package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/sinks"
)

// maxSources is how many sources of one id GET /v1/events/{id} lists in an
// ambiguous_id answer.
const maxSources = 10

// maxScan bounds the versions GET /v1/events/{id} without ?source= looks
// through for the sources of the id; past it the caller must name one.
const maxScan = 1000

// list is GET /v1/events.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		badQuery(w, fmt.Errorf("the query string is malformed: %w", err))
		return
	}
	q, err := sinks.ParseQuery(v)
	if err != nil {
		badQuery(w, err)
		return
	}
	q.Within = readerWithin(w, r)
	s.streamPage(w, r, q)
}

// get is GET /v1/events/{id}: every version of the event, with its trail,
// in the order stored; an answer past Options.QueryMaxBytes is refused
// with 409 answer_too_large, pointing to the paged GET /v1/events.
func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err == nil {
		err = onlySource(v)
	}
	if err != nil {
		badQuery(w, err)
		return
	}
	within := readerWithin(w, r)
	source, given := "", false
	if src, ok := v["source"]; ok {
		source, given = src[0], true
	} else {
		sources, err := s.sourcesOf(r, id, within)
		switch {
		case errors.Is(err, errTooMany):
			apierror.Write(w, http.StatusConflict, CodeAmbiguousID, fmt.Sprintf(
				"%d versions or more use the id %q (from %s); the server looks no further without a source: add ?source=SOURCE",
				maxScan, clip(id), strings.Join(quoteAll(sources[:min(len(sources), maxSources)]), ", ")))
			return
		case err != nil:
			s.storeFailed(w, r, "get", err)
			return
		case len(sources) == 0:
			apierror.Write(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no event with id %q is in the audit store", clip(id))+narrowedNote(within))
			return
		case len(sources) > 1:
			how := fmt.Sprintf("%d sources use the id %q: %s", len(sources), clip(id), strings.Join(quoteAll(sources), ", "))
			if len(sources) > maxSources {
				how = fmt.Sprintf("more than %d sources use the id %q, among them %s", maxSources, clip(id), strings.Join(quoteAll(sources[:maxSources]), ", "))
			}
			apierror.Write(w, http.StatusConflict, CodeAmbiguousID,
				how+"; an event is identified by its source and id together: add ?source=SOURCE to pick one")
			return
		}
		source = sources[0]
	}
	items, err := s.o.Store.Get(r.Context(), source, id)
	if err == nil && within.Narrows() {
		// A version the reader may not see is answered as one the store
		// does not hold, so the answer says nothing of its existence.
		items = slices.DeleteFunc(items, func(it sinks.Item) bool { return !within.Allows(it.Event.Source(), it.Event.Type()) })
		if len(items) == 0 {
			err = sinks.ErrNotFound
		}
	}
	if errors.Is(err, sinks.ErrNotFound) {
		msg := fmt.Sprintf("no event with id %q from source %q is in the audit store", clip(id), clip(source))
		if !given {
			msg = fmt.Sprintf("no event with id %q is in the audit store", clip(id))
		}
		apierror.Write(w, http.StatusNotFound, CodeNotFound, msg+narrowedNote(within))
		return
	}
	if err == nil {
		err = checkItems(items)
	}
	if err != nil {
		s.storeFailed(w, r, "get", err)
		return
	}
	// The answer is built before the 200 goes out, so that one past
	// Options.QueryMaxBytes (a page's bound) can be refused instead.
	var body bytes.Buffer
	cw := &countingWriter{w: &body}
	bw := bufio.NewWriterSize(cw, 32<<10)
	pw := pageWriter{w: bw, narrowed: narrowedJSON(within)}
	pw.open()
	for i := range items {
		pw.item(i, &items[i])
		if size(cw, bw) > s.o.QueryMaxBytes {
			apierror.Write(w, http.StatusConflict, CodeAnswerTooLarge, fmt.Sprintf(
				"the %d versions of the event %q from %q come to more than %d bytes, the most one answer holds; "+
					"page through them with GET /v1/events?source=SOURCE&id=ID (ordered by time, each page bounded, with next)",
				len(items), clip(id), clip(source), s.o.QueryMaxBytes))
			return
		}
	}
	pw.close("")
	_ = bw.Flush()
	startJSON(w)
	_, _ = w.Write(body.Bytes())
}

// narrowedNote tells a narrowed reader that a "not found" covers only
// what it may read.
func narrowedNote(within sinks.Within) string {
	if !within.Narrows() {
		return ""
	}
	return " among the events this token may read (" + within.String() + ")"
}

// onlySource refuses every parameter of GET /v1/events/{id} but one
// non-empty source.
func onlySource(v url.Values) error {
	for k, vals := range v {
		switch {
		case k != "source":
			return fmt.Errorf("parameter %q: unknown; GET /v1/events/{id} accepts only source=SOURCE", clip(k))
		case len(vals) != 1:
			return fmt.Errorf("parameter \"source\": given %d times; give it once", len(vals))
		case vals[0] == "":
			return errors.New("parameter \"source\": empty; name the event's source, or leave the parameter out")
		}
	}
	return nil
}

// sourcesOf lists, sorted, the sources of up to maxSources+1 events with
// this id, looking through maxScan versions at most: past them it
// returns the sources seen with errTooMany.
func (s *Server) sourcesOf(r *http.Request, id string, within sinks.Within) ([]string, error) {
	seen := map[string]bool{}
	scanned := 0
	q := sinks.Query{ID: id, NoTrail: true, Limit: 100, Within: within}
	err := sinks.PageAll(r.Context(), s.o.Store, q, func(items []sinks.Item) error {
		for i := range items {
			seen[items[i].Event.Source()] = true
		}
		scanned += len(items)
		switch {
		case len(seen) > maxSources:
			return errEnough
		case scanned >= maxScan && len(items) == q.Limit:
			return errTooMany
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return slices.Sorted(maps.Keys(seen)), err
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

var (
	// errEnough stops a paging that found what it looked for.
	errEnough = errors.New("enough")
	// errTooMany stops a paging that looked through maxScan versions.
	errTooMany = errors.New("too many versions")
)

// badQuery answers 400 bad_query; a sinks.ErrBadQuery loses its prefix.
func badQuery(w http.ResponseWriter, err error) {
	msg := strings.TrimPrefix(err.Error(), sinks.ErrBadQuery.Error()+": ")
	apierror.Write(w, http.StatusBadRequest, CodeBadQuery, msg)
}

// storeFailed answers a failed store read: 400 for a query the store
// refused, 503 otherwise.
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, op string, err error) {
	if errors.Is(err, sinks.ErrBadQuery) {
		badQuery(w, err)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "audit "+op+" failed", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
	w.Header().Set("Retry-After", retryAfter)
	apierror.Write(w, http.StatusServiceUnavailable, CodeUnavailable, "the audit store did not answer: "+err.Error()+"; try again later")
}

// checkItems refuses versions that cannot be written as events, before
// the 200 goes out.
func checkItems(items []sinks.Item) error {
	for i := range items {
		if items[i].Event.Context == nil {
			return fmt.Errorf("version %d of the answer has no event attributes; the store returned a damaged version", i)
		}
	}
	return nil
}

// startJSON sends the 200 headers and returns a buffered writer for the
// body.
func startJSON(w http.ResponseWriter) *bufio.Writer {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	return bufio.NewWriterSize(w, 32<<10)
}
