package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/sinks"
)

// maxSources is how many sources of one id GET /v1/events/{id} lists in an
// ambiguous_id answer.
const maxSources = 10

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
	page, err := s.o.Store.Query(r.Context(), q)
	if err != nil {
		s.storeFailed(w, r, "query", err)
		return
	}
	if err := checkRecords(page.Records); err != nil {
		s.storeFailed(w, r, "query", err)
		return
	}
	bw := startJSON(w)
	pw := pageWriter{w: bw}
	pw.page(page)
	if err := bw.Flush(); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "audit query answer cut short", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
	}
}

// get is GET /v1/events/{id}.
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
	var rec sinks.Record
	if source, ok := v["source"]; ok {
		rec, err = s.o.Store.Get(r.Context(), source[0], id)
		if errors.Is(err, sinks.ErrNotFound) {
			apierror.Write(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no event with id %q from source %q is in the audit store", clip(id), clip(source[0])))
			return
		}
	} else {
		var sources []string
		rec, sources, err = s.byID(r, id)
		switch {
		case err != nil:
		case len(sources) == 0:
			apierror.Write(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf(
				"no event with id %q is in the audit store (GET /v1/events?id=... lists replayed copies too)", clip(id)))
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
	}
	if err == nil {
		err = checkRecords([]sinks.Record{rec})
	}
	if err != nil {
		s.storeFailed(w, r, "get", err)
		return
	}
	bw := startJSON(w)
	pw := pageWriter{w: bw}
	pw.item(&rec)
	_ = bw.WriteByte('\n')
	_ = bw.Flush()
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

// byID finds the original records with this id: the first one, and the
// sorted sources of up to maxSources+1 of them.
func (s *Server) byID(r *http.Request, id string) (sinks.Record, []string, error) {
	var first sinks.Record
	seen := map[string]bool{}
	q := sinks.Query{ID: id, Limit: 100}
	for {
		page, err := s.o.Store.Query(r.Context(), q)
		if err != nil {
			return first, nil, err
		}
		for i := range page.Records {
			rec := &page.Records[i]
			if rec.Replay != "" || seen[rec.Event.Source()] {
				continue
			}
			if len(seen) == 0 {
				first = *rec
			}
			seen[rec.Event.Source()] = true
		}
		if page.Next == "" || len(seen) > maxSources {
			break
		}
		q.Cursor = page.Next
	}
	sources := make([]string, 0, len(seen))
	for src := range seen {
		sources = append(sources, src)
	}
	sort.Strings(sources)
	return first, sources, nil
}

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

// checkRecords refuses records that cannot be written as events, before
// the 200 goes out.
func checkRecords(recs []sinks.Record) error {
	for i := range recs {
		if recs[i].Event.Context == nil {
			return fmt.Errorf("record %d of the answer has no event attributes; the store returned a damaged record", i)
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
