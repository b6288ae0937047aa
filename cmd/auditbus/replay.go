package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/replay"
)

var replayHelp = helpText{
	usage: `Usage:
  auditbus replay [filter flags] DESTINATION [flags]   start a replay and follow it
  auditbus replay --dry-run [filter flags]             count the events a replay would publish
  auditbus replay list                                 list the replay jobs, newest first
  auditbus replay status ID [--follow]                 show one job
  auditbus replay cancel ID                            cancel a running job
  auditbus replay retry ID                             continue a failed or cancelled job

Publishes again the event versions the daemon's audit store recorded,
selected by the same filters as auditbus query (POST /v1/replays),
--destination, --outcome, --received-from and --received-to included.
Each copy keeps its original id, source, time and data, and carries the
extensions auditbusreplay (the job id) and auditbusreplaytime; each copy
the destination accepts is recorded as a replayed entry on the original
version. Copies made by earlier replays are skipped. Events of one
partition key arrive in their original order.

DESTINATION is one of:
  --to-transport T --to-topic NAME     a topic of a transport the daemon has enabled
  --to-webhook URL                     a webhook (--to-webhook-timeout, --to-header K=V)
  --to-route R --to-destination NAME   a destination of a route in the daemon's routes file

By default the command follows the job until it ends: on a terminal with a
progress bar (events done of total, rate, time left), otherwise with a line
of progress every second. --detach prints the job id and returns at once.
The job runs in the daemon either way: stopping the command (Ctrl-C) does
not stop the replay (auditbus replay cancel ID does).

The daemon is at --url (env AUDITBUS_URL, default http://127.0.0.1:8080)
with the token from --token (env AUDITBUS_TOKEN): scope replay:write to
start, cancel and retry, audit:read to follow, list and show. The time
flags take the forms of auditbus query (RFC 3339, a date, now, -1h, -7d).
`,
	after: `
Examples:
  auditbus replay --dry-run --from -1d --type 'com.example.order.*'
  auditbus replay --from -1d --type 'com.example.order.*' --to-transport kafka --to-topic orders-replayed --rate 1000
  auditbus replay --route billing --destination ledger --outcome delivered --to-route billing --to-destination ledger --name 'ledger fix'
  auditbus replay --source /shop --to-webhook https://new.example.com/events --to-header 'Authorization=Bearer x' --detach
  auditbus replay list
  auditbus replay status 01a20224-39f3-7b9d-9250-50fb3c31e658 --follow
  auditbus replay cancel 01a20224-39f3-7b9d-9250-50fb3c31e658

Exit codes: 0 the replay is done (list, status, cancel, retry: success),
1 the replay failed or was cancelled, or the daemon refused or could not be
reached, 2 usage error, 3 status, cancel or retry: no such job.
`,
}

var redriveHelp = helpText{
	usage: `Usage:
  auditbus redrive --route R [--destination D] [flags]

Delivers again the event versions that a destination of route R
dead-lettered, after the destination is fixed (POST /v1/redrives): those
whose dead-lettered entry no later delivered entry of the same
destination answers. Each version the destination accepts is recorded as
delivered there, so a second redrive leaves it out. With --destination,
only that destination of the route is redriven; without it, each
destination that has versions to redrive gets a job of its own, and a
version goes only to the destinations where it is still dead-lettered.

The jobs are followed as auditbus replay follows one (see auditbus replay
--help), or left to run with --detach. Token scope: replay:write and
audit:read.
`,
	after: `
Examples:
  auditbus redrive --route billing --destination ledger
  auditbus redrive --route billing --from -2h --rate 500 --detach

Exit codes: 0 every job is done (or there was nothing to redrive), 1 a
job failed or was cancelled, or the daemon refused or could not be
reached, 2 usage error.
`,
}

// replayFlags are auditbus replay's flags.
type replayFlags struct {
	daemon daemonFlags
	filterFlags
	toTransport, toTopic, toWebhook, toRoute string
	toDestination, name, output              string
	toTimeout                                time.Duration
	headers                                  multiFlag
	rate                                     float64
	dryRun, detach, follow                   bool
}

// replaySubcommands take an argument each, except list.
var replaySubcommands = map[string]bool{"list": true, "status": true, "cancel": true, "retry": true}

func runReplay(ctx context.Context, args []string, s stdio) int {
	var f replayFlags
	fs := newFlagSet("replay", s.errOut)
	f.daemon.register(fs)
	f.filterFlags.register(fs)
	fs.StringVar(&f.toTransport, "to-transport", "", "destination transport (kafka, amqp, mem), with --to-topic")
	fs.StringVar(&f.toTopic, "to-topic", "", "destination topic or queue, with --to-transport")
	fs.StringVar(&f.toWebhook, "to-webhook", "", "destination webhook URL (http or https)")
	fs.DurationVar(&f.toTimeout, "to-webhook-timeout", 0, "bound on one webhook delivery (default: the daemon's, 10s)")
	fs.Var(&f.headers, "to-header", "header NAME=VALUE sent to the webhook; repeatable")
	fs.StringVar(&f.toRoute, "to-route", "", "route whose destination receives the events, with --to-destination")
	fs.StringVar(&f.toDestination, "to-destination", "", "name of the route's destination, with --to-route")
	fs.Float64Var(&f.rate, "rate", 0, "most events published per second (0: no limit)")
	fs.StringVar(&f.name, "name", "", "a label for the job")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print how many events would be replayed, and start nothing")
	fs.BoolVar(&f.detach, "detach", false, "print the job id and return without following the job")
	fs.BoolVar(&f.follow, "follow", false, "status: follow the job until it ends")
	fs.StringVar(&f.output, "output", "", "list and status: table (list), text (status) or json")
	pos, code, ok := parseArgs(fs, args, replayHelp, s)
	if !ok {
		return code
	}
	set := setFlags(fs)
	c, err := f.daemon.client(set)
	if err != nil {
		return usageError(s, "replay", "%v", err)
	}
	if len(pos) > 0 {
		sub := pos[0]
		if !replaySubcommands[sub] {
			return usageError(s, "replay", "unexpected argument %q (the subcommands are list, status, cancel and retry)", sub)
		}
		for name := range set {
			if name != "url" && name != "token" && name != "timeout" && name != "output" && !(name == "follow" && sub == "status") &&
				!(name == "detach" && sub == "retry") {
				return usageError(s, "replay", "--%s does not go with %s", name, sub)
			}
		}
		if sub == "list" {
			if len(pos) != 1 {
				return usageError(s, "replay", "list takes no argument")
			}
			return replayList(ctx, c, f.output, s)
		}
		if len(pos) != 2 || pos[1] == "" {
			return usageError(s, "replay", "%s takes one job id: auditbus replay %s ID", sub, sub)
		}
		return replayJobCommand(ctx, c, sub, pos[1], &f, s)
	}
	if set["follow"] || set["output"] {
		return usageError(s, "replay", "--follow and --output go with status and list")
	}
	body, err := f.request(time.Now())
	if err != nil {
		return usageError(s, "replay", "%v", err)
	}
	if f.dryRun {
		var ans struct {
			Events   *int64     `json:"events"`
			Narrowed *narrowing `json:"narrowed"`
		}
		if err := c.sendJSON(ctx, http.MethodPost, c.endpoint(url.Values{"dry_run": {"true"}}, "v1", "replays"), body, &ans); err != nil {
			return failure(s, "replay", err)
		}
		ans.Narrowed.note(s, "replay")
		if ans.Events == nil {
			return failure(s, "replay", errors.New(`the answer has no "events": is --url an auditbus daemon?`))
		}
		fmt.Fprintf(s.out, "%d events would be replayed\n", *ans.Events)
		return exitOK
	}
	var j httpapi.ReplayJob
	if err := c.sendJSON(ctx, http.MethodPost, c.endpoint(nil, "v1", "replays"), body, &j); err != nil {
		return failure(s, "replay", err)
	}
	return startedJobs(ctx, c, "replay", []httpapi.ReplayJob{j}, f.detach, s)
}

// request builds the POST /v1/replays body from the flags.
func (f *replayFlags) request(now time.Time) (httpapi.ReplayRequest, error) {
	r := httpapi.ReplayRequest{Rate: f.rate, Name: f.name, Filter: httpapi.ReplayFilter{Type: f.typ, Source: f.source,
		Subject: f.subject, ID: f.id, Route: f.route, Destination: f.destination, Outcome: f.outcome}}
	times := []*string{&r.Filter.From, &r.Filter.To, &r.Filter.ReceivedFrom, &r.Filter.ReceivedTo}
	for i, t := range f.times() {
		var err error
		if *times[i], err = flagTime(t.flag, t.v, now); err != nil {
			return r, err
		}
	}
	if f.rate < 0 {
		return r, fmt.Errorf("--rate %v: want events per second, 0 for no limit", f.rate)
	}
	forms := 0
	for _, given := range []bool{f.toTransport != "" || f.toTopic != "", f.toWebhook != "", f.toRoute != "" || f.toDestination != ""} {
		if given {
			forms++
		}
	}
	if (f.toTimeout != 0 || len(f.headers) > 0) && f.toWebhook == "" {
		return r, errors.New("--to-webhook-timeout and --to-header go with --to-webhook")
	}
	switch {
	case forms > 1:
		return r, errors.New("give one destination: --to-transport/--to-topic, --to-webhook or --to-route/--to-destination")
	case forms == 0 && f.dryRun:
		return r, nil
	case forms == 0:
		return r, errors.New("no destination: give --to-transport and --to-topic, --to-webhook URL, or --to-route and --to-destination (or --dry-run to count)")
	case f.toWebhook != "":
		w := &httpapi.ReplayWebhook{URL: f.toWebhook}
		if f.toTimeout < 0 {
			return r, fmt.Errorf("--to-webhook-timeout %s: must be positive", f.toTimeout)
		}
		if f.toTimeout > 0 {
			w.Timeout = f.toTimeout.String()
		}
		for _, h := range f.headers {
			k, v, ok := strings.Cut(h, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return r, fmt.Errorf("--to-header %q: want NAME=VALUE", h)
			}
			if w.Headers == nil {
				w.Headers = map[string]string{}
			}
			w.Headers[strings.TrimSpace(k)] = v
		}
		r.Destination = &httpapi.ReplayDestination{Webhook: w}
	case f.toRoute != "" || f.toDestination != "":
		if f.toRoute == "" || f.toDestination == "" {
			return r, errors.New("--to-route and --to-destination go together")
		}
		r.Destination = &httpapi.ReplayDestination{Route: f.toRoute, Destination: f.toDestination}
	default:
		if f.toTransport == "" || f.toTopic == "" {
			return r, errors.New("--to-transport and --to-topic go together")
		}
		r.Destination = &httpapi.ReplayDestination{Transport: f.toTransport, Topic: f.toTopic}
	}
	return r, nil
}

// flagTime reads an optional time flag into RFC 3339.
func flagTime(name, v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	at, err := parseTime(v, now)
	if err != nil {
		return "", fmt.Errorf("--%s %q: %w", name, v, err)
	}
	return at.UTC().Format(time.RFC3339Nano), nil
}

// replayJobCommand runs status, cancel or retry on one job.
func replayJobCommand(ctx context.Context, c *client, sub, id string, f *replayFlags, s stdio) int {
	if f.output != "" && f.output != "text" && f.output != "json" {
		return usageError(s, "replay", "--output %q: %s shows text or json", f.output, sub)
	}
	u := c.endpoint(nil, "v1", "replays", id)
	var j httpapi.ReplayJob
	var err error
	switch sub {
	case "status":
		err = c.getJSON(ctx, u, &j)
	case "cancel":
		err = c.sendJSON(ctx, http.MethodDelete, u, nil, &j)
	case "retry":
		err = c.sendJSON(ctx, http.MethodPost, c.endpoint(nil, "v1", "replays", id, "retry"), nil, &j)
	}
	if err != nil {
		if isNotFound(err) {
			fmt.Fprintf(s.errOut, "auditbus replay %s: not found: %v\n", sub, err)
			return exitNotFound
		}
		return failure(s, "replay "+sub, err)
	}
	switch {
	case sub == "retry":
		return startedJobs(ctx, c, "replay", []httpapi.ReplayJob{j}, f.detach, s)
	case sub == "status" && f.follow:
		return followJob(ctx, c, j, s)
	case f.output == "json":
		return printJSON(s, j)
	case sub == "status":
		printJob(s.out, j)
	default:
		fmt.Fprintln(s.out, progressLine(j))
	}
	return exitOK
}

// replayList is auditbus replay list.
func replayList(ctx context.Context, c *client, output string, s stdio) int {
	if output != "" && output != "table" && output != "json" {
		return usageError(s, "replay", "--output %q: list shows table or json", output)
	}
	var ans struct {
		Replays []httpapi.ReplayJob `json:"replays"`
	}
	if err := c.getJSON(ctx, c.endpoint(nil, "v1", "replays"), &ans); err != nil {
		return failure(s, "replay list", err)
	}
	if output == "json" {
		for _, j := range ans.Replays {
			if code := printJSON(s, j); code != exitOK {
				return code
			}
		}
		return exitOK
	}
	if len(ans.Replays) == 0 {
		fmt.Fprintln(s.errOut, "auditbus replay list: no replay jobs")
		return exitOK
	}
	p := newItemPrinter(s.out, "table", false)
	fmt.Fprintln(p.table, "ID\tSTATE\tDONE\tTOTAL\tFAILED\tCREATED\tDESTINATION\tNAME")
	for _, j := range ans.Replays {
		fmt.Fprintf(p.table, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.State, j.Progress.Done, total(j.Progress.Total),
			j.Progress.Failed, j.Created.UTC().Format(timeColumn), cell(j.Request.Destination), cell(j.Name))
	}
	if err := p.table.Flush(); err != nil {
		return failure(s, "replay list", err)
	}
	if err := p.out.Flush(); err != nil {
		return failure(s, "replay list", err)
	}
	return exitOK
}

func total(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

func printJSON(s stdio, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return failure(s, "replay", err)
	}
	fmt.Fprintf(s.out, "%s\n", b)
	return exitOK
}

// printJob writes a job for people, a field a line.
func printJob(w io.Writer, j httpapi.ReplayJob) {
	fmt.Fprintf(w, "id:          %s\n", j.ID)
	if j.Name != "" {
		fmt.Fprintf(w, "name:        %s\n", oneLine(j.Name, 0))
	}
	fmt.Fprintf(w, "state:       %s\n", j.State)
	fmt.Fprintf(w, "destination: %s\n", j.Request.Destination)
	if b, err := json.Marshal(j.Request.Filter); err == nil {
		fmt.Fprintf(w, "filter:      %s\n", b)
	}
	if j.Request.Rate > 0 {
		fmt.Fprintf(w, "rate limit:  %g events/s\n", j.Request.Rate)
	}
	fmt.Fprintf(w, "progress:    %s\n", strings.TrimPrefix(progressLine(j), "replay "+j.ID+": "))
	fmt.Fprintf(w, "created:     %s\n", j.Created.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "updated:     %s\n", j.Updated.UTC().Format(time.RFC3339))
	if j.Error != "" {
		fmt.Fprintf(w, "error:       %s\n", oneLine(j.Error, 0))
	}
	for _, e := range j.Errors {
		what := "job"
		if e.ID != "" {
			what = fmt.Sprintf("event %s from %s", e.ID, e.Source)
		}
		fmt.Fprintf(w, "  %s %s: %s\n", e.Time.UTC().Format(time.RFC3339), what, oneLine(e.Message, 0))
	}
	if n := j.ErrorCount - int64(len(j.Errors)); n > 0 {
		fmt.Fprintf(w, "  ... and %d more errors\n", n)
	}
}

// startedJobs prints the ids of detached jobs, or follows the jobs one
// after the other and returns exitOK only when all are done.
func startedJobs(ctx context.Context, c *client, name string, jobs []httpapi.ReplayJob, detach bool, s stdio) int {
	if detach {
		for _, j := range jobs {
			fmt.Fprintln(s.out, j.ID)
		}
		return exitOK
	}
	code := exitOK
	for _, j := range jobs {
		fmt.Fprintf(s.out, "%s %s started: to %s\n", name, j.ID, j.Request.Destination)
		if c := followJob(ctx, c, j, s); c != exitOK {
			code = c
		}
		if ctx.Err() != nil {
			break
		}
	}
	return code
}

// runRedrive is auditbus redrive.
func runRedrive(ctx context.Context, args []string, s stdio) int {
	var d daemonFlags
	var route, dest, from, to, name string
	var rate float64
	var detach bool
	fs := newFlagSet("redrive", s.errOut)
	d.register(fs)
	fs.StringVar(&route, "route", "", "the route whose dead-lettered events are delivered again (required)")
	fs.StringVar(&dest, "destination", "", "only this destination of the route (default: each that dead-lettered)")
	fs.StringVar(&from, "from", "", "events at or after this time (RFC 3339, a date, now, or relative: -1h)")
	fs.StringVar(&to, "to", "", "events before this time (same forms as --from)")
	fs.Float64Var(&rate, "rate", 0, "most events published per second (0: no limit)")
	fs.StringVar(&name, "name", "", "a label for the jobs")
	fs.BoolVar(&detach, "detach", false, "print the job ids and return without following the jobs")
	pos, code, ok := parseArgs(fs, args, redriveHelp, s)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(s, "redrive", "unexpected argument %q", pos[0])
	}
	if route == "" {
		return usageError(s, "redrive", "--route is required")
	}
	if rate < 0 {
		return usageError(s, "redrive", "--rate %v: want events per second, 0 for no limit", rate)
	}
	c, err := d.client(setFlags(fs))
	if err != nil {
		return usageError(s, "redrive", "%v", err)
	}
	body := httpapi.RedriveRequest{Route: route, Destination: dest, Rate: rate, Name: name}
	now := time.Now()
	if body.From, err = flagTime("from", from, now); err == nil {
		body.To, err = flagTime("to", to, now)
	}
	if err != nil {
		return usageError(s, "redrive", "%v", err)
	}
	var ans struct {
		Jobs     []httpapi.ReplayJob `json:"jobs"`
		Narrowed *narrowing          `json:"narrowed"`
	}
	if err := c.sendJSON(ctx, http.MethodPost, c.endpoint(nil, "v1", "redrives"), body, &ans); err != nil {
		return failure(s, "redrive", err)
	}
	ans.Narrowed.note(s, "redrive")
	if len(ans.Jobs) == 0 {
		fmt.Fprintf(s.errOut, "auditbus redrive: nothing to redrive: no destination of route %q has dead-lettered events it did not deliver since\n", route)
		return exitOK
	}
	return startedJobs(ctx, c, "redrive", ans.Jobs, detach, s)
}

// sendJSON sends body (nil: none) as JSON with method and decodes the
// JSON answer into out.
func (c *client) sendJSON(ctx context.Context, method, u string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode the request: %w", method, u, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: HTTP %d, but the answer is not the JSON expected: %w", method, redactURL(req.URL), resp.StatusCode, err)
	}
	return nil
}

// jobFinal reports whether the job has stopped for good.
func jobFinal(j httpapi.ReplayJob) bool { return j.State != replay.Running }
