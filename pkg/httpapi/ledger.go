package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/sinks"
)

// ledgerParams are the parameters of GET /v1/ledger.
type ledgerParams struct {
	log      string
	afterSeq uint64
	limit    int
}

// parseLedger reads GET /v1/ledger's parameters: log (required),
// after_seq (default 0) and limit (1 to sinks.MaxLimit, default
// sinks.DefaultLimit). Errors name the parameter.
func parseLedger(rawQuery string) (ledgerParams, error) {
	p := ledgerParams{limit: sinks.DefaultLimit}
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, fmt.Errorf("the query string is malformed: %w", err)
	}
	for k, vals := range v {
		switch {
		case k != "log" && k != "after_seq" && k != "limit":
			return p, fmt.Errorf("parameter %q: unknown; GET /v1/ledger accepts log, after_seq and limit", clip(k))
		case len(vals) != 1:
			return p, fmt.Errorf("parameter %q: given %d times; give it once", k, len(vals))
		}
	}
	p.log = v.Get("log")
	if p.log == "" {
		return p, errors.New(`parameter "log": required; GET /v1/ledger/logs lists the logs`)
	}
	if err := sinks.ValidLogName(p.log); err != nil {
		return p, fmt.Errorf("parameter \"log\": %w", err)
	}
	if s := v.Get("after_seq"); s != "" {
		if p.afterSeq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return p, fmt.Errorf("parameter \"after_seq\": %q is not a position (0 or a positive integer)", clip(s))
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > sinks.MaxLimit {
			return p, fmt.Errorf("parameter \"limit\": %q is not an integer from 1 to %d", clip(s), sinks.MaxLimit)
		}
		p.limit = n
	}
	return p, nil
}

// ledger is GET /v1/ledger: one page of a log's entries in seq order.
func (s *Server) ledger(w http.ResponseWriter, r *http.Request) {
	p, err := parseLedger(r.URL.RawQuery)
	if err != nil {
		badQuery(w, err)
		return
	}
	if refuseWhole(w, r, "GET /v1/ledger") {
		return
	}
	entries, err := s.o.Store.Entries(r.Context(), p.log, p.afterSeq, p.limit)
	if errors.Is(err, sinks.ErrNoLog) {
		apierror.Write(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("the ledger has no log %q; GET /v1/ledger/logs lists its logs", clip(p.log)))
		return
	}
	if err != nil {
		s.storeFailed(w, r, "ledger read", err)
		return
	}
	next := p.afterSeq
	if len(entries) > 0 {
		next = entries[len(entries)-1].Seq
	}
	bw := startJSON(w)
	pw := pageWriter{w: bw}
	pw.ledgerPage(p.log, entries, next)
	if err := bw.Flush(); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "ledger answer cut short", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
	}
}

// logInfo is one log of GET /v1/ledger/logs.
type logInfo struct {
	Name string `json:"name"`
	Size uint64 `json:"size"`
}

// logs is GET /v1/ledger/logs: the ledger's logs and their sizes.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		badQuery(w, errors.New("GET /v1/ledger/logs takes no parameters"))
		return
	}
	logs, err := s.o.Store.Logs(r.Context())
	if err != nil {
		s.storeFailed(w, r, "ledger logs", err)
		return
	}
	out := struct {
		Logs []logInfo `json:"logs"`
	}{Logs: make([]logInfo, len(logs))}
	for i, l := range logs {
		out.Logs[i] = logInfo{l.Name, l.Size}
	}
	writeValue(w, http.StatusOK, out)
}
