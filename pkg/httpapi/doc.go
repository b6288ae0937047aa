// Package httpapi is the daemon's one HTTP server: CloudEvents ingest, the
// audit query, replays, health, readiness and Prometheus metrics.
//
// Endpoints (scopes are checked only when the Verifier has keys):
//
//	POST /v1/events          scope events:write  ingest, binary, structured or batch content mode
//	GET  /v1/events          scope audit:read    audit query, one page of event versions with their trails
//	GET  /v1/events/{id}     scope audit:read    every version of one event (?source= when ids collide)
//	GET  /v1/ledger          scope audit:read    one page of a log's entries: ?log=L&after_seq=N&limit=M
//	GET  /v1/ledger/logs     scope audit:read    the ledger's logs and their sizes: {"logs":[{"name","size"}]}
//	GET  /v1/counts          scope audit:read    versions per bucket and type: ?from=&to=&bucket=1m&type=; &by=outcome: route entries per kind
//	GET  /v1/totals          scope audit:read    versions and conflicts of a time range, and its entries per kind: ?from=&to=&type=
//	GET  /ui/                no token            the audit explorer (package ui); GET / redirects there
//	POST /v1/replays         scope replay:write and audit:read  start a replay job (202 with the job); ?dry_run=true counts (200 {"events":N})
//	GET  /v1/replays         scope audit:read    a page of replay jobs, newest first: {"replays":[...],"next":ID}; ?limit=N&after=ID
//	GET  /v1/replays/{id}    scope audit:read    one replay job
//	DELETE /v1/replays/{id}  scope replay:write  cancel a running job (200 with the job)
//	POST /v1/replays/{id}/retry  replay:write    continue a failed or cancelled job from its checkpoint
//	POST /v1/redrives        scope replay:write and audit:read  redrive a route's dead-lettered events (202 {"jobs":[...]}, 200 with none)
//	GET  /healthz            no token            200 {"status":"ok"} while the process serves
//	GET  /readyz             no token            200 {"status":"ready"}, or 503 not_ready with the reason
//	GET  /metrics            no token            Prometheus text format
//
// POST /v1/events takes the events of the request (see package cehttp) and
// either publishes them to ?topic=NAME (default Options.DefaultTopic) on
// the default transport and records each in the audit store with a
// received entry (the request, its principal and the event's position in
// it), or runs them through the HTTP-fed route ?route=NAME, which
// delivers and records them. It answers 202 {"accepted":N} only after the
// transport (or the route) took every event and the ledger records are
// durable; any other answer means none may be counted on, and sending the
// request again is safe (consumers deduplicate by source and id, the
// store keeps each version once and records the new request as another
// reception). A batch is all or nothing.
//
// GET /v1/events takes the parameters of sinks.ParseQuery: from and to
// (RFC 3339, the version's time), type (a trailing * matches a prefix),
// source, subject, id; route, destination, outcome (an entry kind:
// received, refused, filtered, delivered, deadlettered, poison, replayed),
// received_from and received_to (RFC 3339, the entry's time), which
// select the versions with one entry matching all of those given; limit
// (at most 10,000; default 100), order (asc or desc) and cursor. It
// answers one item per event version,
//
//	{"items":[{"event":{...},"digest":"sha256:...","conflict":false,"trail":[{...},...]},...],"next":"<cursor>"}
//
// where event is the CloudEvent in the JSON event format as the CloudEvents
// SDK writes it, its data byte for byte: as JSON when it is valid JSON of a
// JSON content type, as a string when it is UTF-8 text, in data_base64
// otherwise. digest names the version (sinks.DigestEvent); conflict says
// that another version of the same source and id was stored before it.
// trail is every ledger entry of the version, ordered by time, log and
// seq: {"log", "seq", "time", "kind", "transport", "topic", "partition",
// "offset", "request", "principal", "route", "destination", "attempts",
// "error", "replay", "trace_id", "span_id", "signature"}, the empty ones
// left out (trace_id and span_id: the W3C trace and span the hop happened
// under; signature: what checking a received or refused version's
// signature found, "verified: KEYID", "unsigned" or "invalid: REASON",
// see sinks.Entry.Signature). next is omitted on the
// last page; pass it as cursor, with the same other parameters, for the
// next page. GET /v1/events/{id} answers {"items":[...]}: every version
// of the event, in the order they were stored.
//
// GET /v1/ledger pages through one log's entries in seq order: log is
// required, after_seq (default 0) is the last seq already read, limit is
// 1 to 10,000 (default 100). It answers
//
//	{"log":"L","entries":[{"log","seq","time","kind","source","id","digest",...}],"next_after_seq":N}
//
// each entry with its version's source, id and digest; next_after_seq is
// the after_seq of the next page. A page with fewer entries than limit
// reached the end of the log as it stands; entries appended later come
// after next_after_seq. A log the ledger does not hold is 404 not_found.
//
// GET /v1/counts takes from and to (RFC 3339, required), bucket (a
// duration of at least 1s, default 1m, at most 10,000 buckets) and type
// (a trailing * matches a prefix), and answers the non-zero counts of
// event versions per bucket and type, by the versions' time:
//
//	{"from":"...","to":"...","bucket":"1m0s","counts":[{"start":"...","type":"...","n":N},...]}
//
// GET /v1/totals takes from, to and type and answers how many versions
// the range has and how many of them conflict, and how many entries of
// each kind were recorded in it (with a type, those of its versions):
//
//	{"from":"...","to":"...","totals":{"versions":N,"conflicts":N,"received":N,"filtered":N,"delivered":N,"deadlettered":N,"poison":N,"replayed":N}}
//
// Both stores keep these counts per minute as they append (see
// sinks.RollupGrain): a range whose from and bucket are whole minutes is
// counted from a row per minute, type and kind whatever the number of
// events; other edges count the events of the minutes they cut, and
// totals with a type count the range's entries.
//
// With by=outcome (and no type), GET /v1/counts counts the entries with
// a route per bucket of their time and per kind instead, each row
// {"start","outcome","n"}; a store without sinks.OutcomeCounter refuses
// it. The explorer's overview draws the counts and shows the totals.
//
// The replay endpoints exist when Options.Replays is set. POST /v1/replays
// takes the JSON body of ReplayRequest,
//
//	{"filter": {"from": "2026-05-01T00:00:00Z", "to": "...", "type": "com.example.order.*",
//	            "source": ..., "subject": ..., "id": ..., "route": ..., "destination": ...,
//	            "outcome": ..., "received_from": ..., "received_to": ...},
//	 "destination": {"transport": "kafka", "topic": "orders-replayed"},
//	 "rate": 1000, "name": "orders for the new billing service"}
//
// where the filter selects versions as GET /v1/events does and
// destination is a topic of an enabled transport, a webhook
// ({"webhook": {"url": ..., "timeout": "5s", "headers": {...}}}) or a
// destination of a route ({"route": "billing", "destination": "ledger"}),
// resolved by Options.Destinations. Unknown members are refused. Each copy
// the destination accepts is recorded as a replayed entry on the original
// version. A job (ReplayJob) is {"id", "name", "state", "request",
// "progress": {"done", "failed", "skipped", "total", "rate",
// "eta_seconds"}, "errors", "error_count", "error", "created",
// "updated"}. POST /v1/redrives takes RedriveRequest, {"route",
// "destination", "from", "to", "rate", "name"}: the versions the route's
// destination dead-lettered and has not delivered since are published to
// it again, and each it accepts is recorded as delivered there, so a
// later redrive leaves it out. Without a destination, each destination of
// the route with versions to redrive gets a job of its own; when none has
// any, the answer is 200 {"jobs":[]}.
//
// Permissions (auth.Principal.Permissions) narrow both ways. A publish
// whose topic, route, source or type the principal may not use is 403
// permission_denied naming the rule and the first refused event (index,
// attribute); the whole request is refused, and each refused event is
// recorded with a refused entry (principal, transport http, topic or
// route, the rule in error) and counted in Options.Refusals. A reader
// restricted by source or type prefixes gets only what it may read from
// GET /v1/events, /v1/events/{id}, /v1/counts, /v1/totals, replays and
// redrives, each answer saying so in a "narrowed" member
// ({"source_prefixes":[...],"type_prefixes":[...]}) and the
// Auditbus-Narrowed header; an event it may not read is 404 like a
// missing one. A job shows the narrowing it runs under (request.narrowed)
// and keeps it when resumed; a narrowed reader lists, reads, cancels and
// retries only the jobs that read no more than it may (another is 404). GET /v1/ledger and GET /v1/counts?by=outcome, which cannot
// be narrowed so, are 403 permission_denied to it.
//
// Every error is the JSON body of package apierror,
// {"error":{"code":"...","message":"..."}}, with "attribute" and "index"
// when the error concerns one attribute or batch element. Statuses and
// codes:
//
//	400 malformed_json, missing_attribute, bad_specversion,
//	    invalid_attribute, bad_batch_element (with index),
//	    unreadable_body                 the request's events are refused (package cehttp)
//	400 invalid_event                   the transport refused an event
//	400 bad_query                       a query parameter is unknown, repeated or malformed; the message names it
//	400 bad_request                     a replay or redrive body field is unknown, missing or bad; the message names it
//	401 unauthorized, malformed_token, bad_signature, token_expired, ...  (package auth)
//	403 insufficient_scope              the token lacks the endpoint's scope
//	403 permission_denied               the principal's permissions refuse the publish or the read
//	403 signature_refused               ?route= names a route with signatures: required and an event of the
//	                                    request is unsigned, or its signature is invalid or by a key not allowed
//	                                    for its source and type (with index; the message names the rule and
//	                                    the event); nothing was delivered, the refused events are recorded
//	404 not_found                       no such endpoint, event or log
//	404 unknown_route                   ?route= names no HTTP-fed route
//	404 no_route                        nothing consumes the topic on the transport
//	405 method_not_allowed              with an Allow header
//	409 ambiguous_id                    several sources use the id: add ?source=
//	409 answer_too_large                GET /v1/events/{id}: the versions exceed Options.QueryMaxBytes; page
//	                                    them with GET /v1/events?source=&id=
//	409 not_running                     cancel of a job that stopped, retry of one that is not failed or cancelled
//	413 too_large                       the body exceeds Options.MaxBodyBytes, or the transport's limit
//	415 unsupported_media_type          neither binary mode nor a JSON event format
//	500 internal                        a fault of this server, not of the request
//	503 unavailable                     the transport or audit store failed; Retry-After says when to retry
//	503 not_ready                       GET /readyz: the readiness check failed
//
// The server counts requests in auditbus_http_requests_total{handler,code}
// and times them in auditbus_http_request_seconds{handler}, where handler
// is the route pattern ("POST /v1/events", "/" for unknown paths), so the
// labels stay bounded.
package httpapi
