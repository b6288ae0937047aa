package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

var queryHelp = helpText{
	usage: `Usage:
  auditbus query [flags]                  search the audit store
  auditbus query get ID [--source S]      fetch every version of one event

Asks a daemon's audit endpoint (GET /v1/events) for the event versions
it recorded, newest or oldest first, a page at a time; --all follows the
pages to the end. Each flag is the query parameter of the same name:
--route, --destination, --outcome (an entry kind: received, refused, filtered,
delivered, deadlettered, poison, replayed), --received-from and
--received-to select the versions with one ledger entry matching all of
those given. The table shows a version a row: time, type, source, id,
the start of its digest ("conflict" after it when another version of the
same source and id came first) and the kinds of its trail; --trail adds
the trail, an entry a line (time, kind, route, destination, attempts,
the trace id the hop happened under, what checking the signature
found: verified, unsigned or invalid, and the error). --output json prints each item as the daemon sent it
({"event": {...}, "digest": ..., "conflict": ..., "trail": [...]}), one a
line.

"get" fetches every version of one event (GET /v1/events/{id}); give
--source when events of several sources share the id. Its output is json
unless --output says otherwise.

The daemon is at --url (env AUDITBUS_URL, default http://127.0.0.1:8080)
with the token from --token (env AUDITBUS_TOKEN; scope audit:read).
--from, --to, --received-from and --received-to take RFC 3339 times
(2026-05-01T10:00:00Z), dates (2026-05-01, UTC midnight), "now", or times
relative to now such as -1h, -30m, -7d or -1h30m.
`,
	after: `
Examples:
  auditbus query --from -1h --type 'com.example.order.*'
  auditbus query --source /orders --subject 42 --order desc --limit 10
  auditbus query --from 2026-05-01 --to 2026-05-02 --all --output json > day.jsonl
  auditbus query --outcome deadlettered --route billing --destination ledger --trail
  auditbus query --outcome received --received-from -15m
  auditbus query get 0190a4b2-7c1e-7d2f-9a3b-4c5d6e7f8a9b --source /orders --output table --trail

Exit codes: 0 success (also when nothing matches), 1 the daemon refused
or failed (its error is shown) or could not be reached, 2 usage error,
3 get: no such event.
`,
}

// filterFlags select event versions, in auditbus query and auditbus
// replay.
type filterFlags struct {
	from, to, typ, source, subject, id, route, destination, outcome string
	receivedFrom, receivedTo                                        string
}

// register adds the filter flags to fs.
func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.from, "from", "", "events at or after this time (RFC 3339, a date, now, or relative: -1h)")
	fs.StringVar(&f.to, "to", "", "events before this time (same forms as --from)")
	fs.StringVar(&f.typ, "type", "", "event type; a trailing * matches a prefix (com.example.*)")
	fs.StringVar(&f.source, "source", "", "event source")
	fs.StringVar(&f.subject, "subject", "", "event subject")
	fs.StringVar(&f.id, "id", "", "event id")
	fs.StringVar(&f.route, "route", "", "an entry's route")
	fs.StringVar(&f.destination, "destination", "", "an entry's destination (a route's destination name)")
	fs.StringVar(&f.outcome, "outcome", "", "an entry's kind: received, refused, filtered, delivered, deadlettered, poison or replayed")
	fs.StringVar(&f.receivedFrom, "received-from", "", "an entry recorded at or after this time (same forms as --from)")
	fs.StringVar(&f.receivedTo, "received-to", "", "an entry recorded before this time (same forms as --from)")
}

// times are the time flags with their query parameter names.
func (f *filterFlags) times() []struct{ flag, param, v string } {
	return []struct{ flag, param, v string }{{"from", "from", f.from}, {"to", "to", f.to},
		{"received-from", "received_from", f.receivedFrom}, {"received-to", "received_to", f.receivedTo}}
}

// queryFlags are auditbus query's flags.
type queryFlags struct {
	daemon daemonFlags
	filterFlags
	order, cursor, output string
	limit                 int
	all, trail            bool
}

// getFlags are the query flags that go with "query get".
var getFlags = map[string]bool{"source": true, "output": true, "trail": true, "url": true, "token": true, "timeout": true}

func runQuery(ctx context.Context, args []string, s stdio) int {
	var f queryFlags
	fs := newFlagSet("query", s.errOut)
	f.daemon.register(fs)
	f.filterFlags.register(fs)
	fs.IntVar(&f.limit, "limit", 0, "events per page (0: the daemon's default, 100)")
	fs.StringVar(&f.order, "order", "", "asc (oldest first) or desc (newest first); default: the daemon's")
	fs.StringVar(&f.cursor, "cursor", "", "continue from this cursor (the \"next\" of an earlier page)")
	fs.BoolVar(&f.all, "all", false, "follow the next cursors to the last page")
	fs.StringVar(&f.output, "output", "", "table or json (default table; json for get)")
	fs.BoolVar(&f.trail, "trail", false, "table: print each version's trail under it, an entry a line")
	pos, code, ok := parseArgs(fs, args, queryHelp, s)
	if !ok {
		return code
	}
	set := setFlags(fs)
	get := len(pos) > 0 && pos[0] == "get"
	switch {
	case get && len(pos) != 2:
		return usageError(s, "query", "get takes one event id: auditbus query get ID [--source S]")
	case !get && len(pos) > 0:
		return usageError(s, "query", "unexpected argument %q (to fetch one event: auditbus query get ID)", pos[0])
	}
	if f.output == "" {
		f.output = "table"
		if get {
			f.output = "json"
		}
	}
	if f.output != "table" && f.output != "json" {
		return usageError(s, "query", "--output %q: want table or json", f.output)
	}
	if f.trail && f.output != "table" {
		return usageError(s, "query", "--trail goes with --output table (json items hold their trail)")
	}
	c, err := f.daemon.client(set)
	if err != nil {
		return usageError(s, "query", "%v", err)
	}
	if get {
		for name := range set {
			if !getFlags[name] {
				return usageError(s, "query", "--%s does not go with get, which takes --source, --output, --trail, --url, --token and --timeout", name)
			}
		}
		return queryGet(ctx, c, pos[1], f.source, newItemPrinter(s.out, f.output, f.trail), s)
	}
	q, err := f.params(time.Now())
	if err != nil {
		return usageError(s, "query", "%v", err)
	}
	return queryList(ctx, c, q, f.all, newItemPrinter(s.out, f.output, f.trail), s)
}

// params turns the flags into the query parameters of GET /v1/events.
func (f *queryFlags) params(now time.Time) (url.Values, error) {
	q := url.Values{}
	for _, t := range f.times() {
		at, err := flagTime(t.flag, t.v, now)
		if err != nil {
			return nil, err
		}
		if at != "" {
			q.Set(t.param, at)
		}
	}
	for _, p := range []struct{ name, v string }{
		{"type", f.typ}, {"source", f.source}, {"subject", f.subject}, {"id", f.id},
		{"route", f.route}, {"destination", f.destination}, {"outcome", f.outcome}, {"cursor", f.cursor},
	} {
		if p.v != "" {
			q.Set(p.name, p.v)
		}
	}
	if f.limit < 0 {
		return nil, fmt.Errorf("--limit %d: must be 0 (the daemon's default) or more", f.limit)
	}
	if f.limit > 0 {
		q.Set("limit", strconv.Itoa(f.limit))
	}
	switch f.order {
	case "":
	case "asc", "desc":
		q.Set("order", f.order)
	default:
		return nil, fmt.Errorf("--order %q: want asc or desc", f.order)
	}
	return q, nil
}

// parseTime reads an RFC 3339 time, a date, "now", or a time relative to
// now: a signed Go duration (-1h30m) or a whole number of days (-7d).
func parseTime(v string, now time.Time) (time.Time, error) {
	if v == "now" {
		return now, nil
	}
	if v[0] == '-' || v[0] == '+' {
		if days, ok := strings.CutSuffix(v, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil {
				return time.Time{}, errors.New("want a whole number of days, such as -7d")
			}
			return now.AddDate(0, 0, n), nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return time.Time{}, errors.New("want a duration relative to now, such as -1h, -30m, -1h30m or -7d")
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want an RFC 3339 time (2026-05-01T10:00:00Z), a date (2026-05-01), now, or a time relative to now (-1h, -7d)")
}

// auditItem is what the table shows of an item of the audit endpoint.
type auditItem struct {
	Event struct {
		ID     string `json:"id"`
		Source string `json:"source"`
		Type   string `json:"type"`
		Time   string `json:"time"`
	} `json:"event"`
	Digest   string       `json:"digest"`
	Conflict bool         `json:"conflict"`
	Trail    []trailEntry `json:"trail"`
}

// trailEntry is what the table shows of a trail's entry.
type trailEntry struct {
	Time        string `json:"time"`
	Kind        string `json:"kind"`
	Route       string `json:"route"`
	Destination string `json:"destination"`
	Attempts    int    `json:"attempts"`
	Error       string `json:"error"`
	TraceID     string `json:"trace_id"`
	Signature   string `json:"signature"`
}

// itemPrinter prints event versions as a table, with their trails or
// not, or as JSON lines.
type itemPrinter struct {
	out    *bufio.Writer
	table  *tabwriter.Writer
	json   bool
	trail  bool
	header bool
	n      int
}

func newItemPrinter(w io.Writer, output string, trail bool) *itemPrinter {
	p := &itemPrinter{out: bufio.NewWriter(w), json: output == "json", trail: trail}
	p.table = tabwriter.NewWriter(p.out, 0, 0, 2, ' ', 0)
	return p
}

// print writes items; the table's columns are aligned per call, or per
// version with its trail.
func (p *itemPrinter) print(items []json.RawMessage) error {
	for _, raw := range items {
		p.n++
		if p.json {
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return fmt.Errorf("item %d of the answer: %w", p.n, err)
			}
			b.WriteByte('\n')
			p.out.Write(b.Bytes())
			continue
		}
		var it auditItem
		if err := json.Unmarshal(raw, &it); err != nil {
			return fmt.Errorf("item %d of the answer is not {\"event\": ..., \"digest\": ..., \"trail\": [...]}: %w", p.n, err)
		}
		if !p.header {
			p.header = true
			fmt.Fprintln(p.table, "TIME\tTYPE\tSOURCE\tID\tDIGEST\tTRAIL")
		}
		at := it.Event.Time
		if at == "" && len(it.Trail) > 0 {
			at = it.Trail[0].Time
		}
		digest := shortDigest(it.Digest)
		if it.Conflict {
			digest += " conflict"
		}
		fmt.Fprintf(p.table, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(column(at)), cell(it.Event.Type), cell(it.Event.Source),
			cell(it.Event.ID), cell(digest), cell(trailKinds(it.Trail)))
		if p.trail {
			if err := p.table.Flush(); err != nil {
				return err
			}
			for _, en := range it.Trail {
				attempts := ""
				if en.Attempts > 0 {
					attempts = fmt.Sprint(en.Attempts)
				}
				fmt.Fprintf(p.table, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(column(en.Time)), cell(en.Kind), cell(en.Route),
					cell(en.Destination), cell(attempts), cell(en.TraceID), cell(en.Signature), cell(en.Error))
			}
			if err := p.table.Flush(); err != nil {
				return err
			}
		}
	}
	if err := p.table.Flush(); err != nil {
		return err
	}
	return p.out.Flush()
}

// column shows an RFC 3339 time as tables do, or as it is when it is not
// one.
func column(at string) string {
	if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
		return t.UTC().Format(timeColumn)
	}
	return at
}

// shortDigest is the first twelve hex digits of a "sha256:" digest.
func shortDigest(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	return h[:min(len(h), 12)]
}

// trailKinds sums up a trail: its kinds in order, a run of one kind
// counted ("received, delivered(2)").
func trailKinds(trail []trailEntry) string {
	var parts []string
	for i := 0; i < len(trail); {
		k := i
		for k < len(trail) && trail[k].Kind == trail[i].Kind {
			k++
		}
		part := trail[i].Kind
		if k-i > 1 {
			part += fmt.Sprintf("(%d)", k-i)
		}
		parts = append(parts, part)
		i = k
	}
	return strings.Join(parts, ", ")
}

// timeColumn is how tables and tail lines show times: UTC, milliseconds.
const timeColumn = "2006-01-02T15:04:05.000Z"

// cell is a table cell: one line, "-" when empty.
func cell(s string) string {
	if s = oneLine(s, 0); s == "" {
		return "-"
	}
	return s
}

// queryList pages through GET /v1/events.
func queryList(ctx context.Context, c *client, q url.Values, all bool, p *itemPrinter, s stdio) int {
	for {
		var page struct {
			Items    []json.RawMessage `json:"items"`
			Next     string            `json:"next"`
			Narrowed *narrowing        `json:"narrowed"`
		}
		if err := c.getJSON(ctx, c.endpoint(q, "v1", "events"), &page); err != nil {
			return failure(s, "query", err)
		}
		if q.Get("cursor") == "" || !all {
			page.Narrowed.note(s, "query")
		}
		if page.Items == nil {
			return failure(s, "query", errors.New("the answer has no \"items\": is --url an auditbus daemon?"))
		}
		if err := p.print(page.Items); err != nil {
			return failure(s, "query", err)
		}
		if page.Next == "" {
			break
		}
		if !all {
			fmt.Fprintf(s.errOut, "auditbus query: more events: add --cursor %s, or --all for every page\n", page.Next)
			break
		}
		if page.Next == q.Get("cursor") {
			return failure(s, "query", fmt.Errorf("the daemon answered cursor %q again; stopping", page.Next))
		}
		q.Set("cursor", page.Next)
	}
	if p.n == 0 && !p.json {
		fmt.Fprintln(s.errOut, "auditbus query: no events match")
	}
	return exitOK
}

// queryGet fetches every version of one event by id.
func queryGet(ctx context.Context, c *client, id, source string, p *itemPrinter, s stdio) int {
	if id == "" {
		return usageError(s, "query", "get: the event id is empty")
	}
	q := url.Values{}
	if source != "" {
		q.Set("source", source)
	}
	var versions struct {
		Items    []json.RawMessage `json:"items"`
		Narrowed *narrowing        `json:"narrowed"`
	}
	err := c.getJSON(ctx, c.endpoint(q, "v1", "events", id), &versions)
	versions.Narrowed.note(s, "query get")
	if err != nil {
		if isNotFound(err) {
			fmt.Fprintf(s.errOut, "auditbus query get: not found: %v\n", err)
			return exitNotFound
		}
		return failure(s, "query get", err)
	}
	if versions.Items == nil {
		return failure(s, "query get", errors.New("the answer has no \"items\": is --url an auditbus daemon?"))
	}
	if err := p.print(versions.Items); err != nil {
		return failure(s, "query get", err)
	}
	return exitOK
}

// getJSON GETs u and decodes the JSON answer into v.
func (c *client) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: HTTP %d, but the answer is not the JSON expected: %w", redactURL(req.URL), resp.StatusCode, err)
	}
	return nil
}

// narrowing is the "narrowed" member of an answer: the daemon left out
// what the token may not read.
type narrowing struct {
	SourcePrefixes []string `json:"source_prefixes"`
	TypePrefixes   []string `json:"type_prefixes"`
}

// note tells, on stderr, that the answer was narrowed; nil says nothing.
func (n *narrowing) note(s stdio, cmd string) {
	if n == nil {
		return
	}
	var parts []string
	if n.SourcePrefixes != nil {
		parts = append(parts, "sources starting with "+strings.Join(quoteEach(n.SourcePrefixes), " or "))
	}
	if n.TypePrefixes != nil {
		parts = append(parts, "types starting with "+strings.Join(quoteEach(n.TypePrefixes), " or "))
	}
	fmt.Fprintf(s.errOut, "auditbus %s: narrowed: this token reads only %s; other events are left out\n", cmd, strings.Join(parts, " and "))
}

func quoteEach(list []string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = strconv.Quote(v)
	}
	return out
}
