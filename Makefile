# auditbus: build, test, lint and benchmark every Go module in the repository.
# `make test` is the one test command (CI runs it through .ci/run).

export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO          ?= go
# Every Go module in the repository: the library/daemon, the benchmarks,
# the deploy files' validation (helm, Kubernetes API types, compose), and
# pkg/e2e, the tests that need kfake, sarama, chromedp or pty; each a
# module of its own so those modules stay out of the library's go.mod.
MODULES     := . benchmarks deploy/validate pkg/e2e
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run test services lint fmt bench bench-mem bench-amqp-raw bench-amqp-watermill bench-kafka-raw bench-kafka-watermill

## run: the daemon on its embedded default (mem transport, SQLite under ./data, HTTP on 127.0.0.1:8080) with the example routes
run:
	@AUDITBUS_ROUTES=$${AUDITBUS_ROUTES:-deploy/routes.example.yaml} $(GO) run ./cmd/auditbus serve

## test: start the services tests need, lint, run every module's tests under -race, then each fuzz target briefly
test: services lint
	@set -e; for m in $(MODULES); do \
		echo "== go test -race $$m"; \
		(cd $$m && $(GO) test -race -count=1 -timeout 20m ./...); \
	done
	@$(MAKE) --no-print-directory fuzz

# The fuzz targets: the HTTP ingest decoders, the audit query's parameter
# parser, the replay request parser, the routes file parser, the
# signed-event decoder (dssematerial and signedextattrs) and the Macaroon
# caveat parser.
FUZZ_TARGETS := pkg/cehttp:FuzzDecodeJSON pkg/cehttp:FuzzHeaderValue sinks:FuzzParseQuery \
	pkg/httpapi:FuzzReplayRequest pkg/router:FuzzParseRoutes bus/signing:FuzzDecode \
	pkg/auth:FuzzParseCaveat pkg/signers:FuzzParse
FUZZTIME ?= 5s

.PHONY: fuzz
## fuzz: run each fuzz target for FUZZTIME (default 5s; make fuzz FUZZTIME=10m for a long run), seeded from the tests
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== go test -fuzz $$fn ./$$pkg ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg; \
	done

## services: make sure the brokers and stores the tests need run on 127.0.0.1
services:
	@bash deploy/test-services.sh up

## lint: gofmt, go vet and staticcheck on every module
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do \
		echo "== go vet + staticcheck $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...); \
	done

## fmt: format every Go file
fmt:
	gofmt -w $(MODULES)

## bench: every Go benchmark, then every harness comparison
bench: bench-mem bench-amqp-raw bench-amqp-watermill bench-kafka-raw bench-kafka-watermill
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem ./...); done

## bench-mem: bus/mem against Watermill's GoChannel, end to end; ends with `ratio: X`
bench-mem:
	@cd benchmarks && $(GO) run ./cmd/bench-mem

## bench-amqp-raw: bus/amqp against raw amqp091-go on the local RabbitMQ; ends with `ratio: X`
bench-amqp-raw: services
	@cd benchmarks && $(GO) run ./cmd/bench-amqp -vs raw

## bench-amqp-watermill: bus/amqp against Watermill's AMQP Pub/Sub on the local RabbitMQ; ends with `ratio: X`
bench-amqp-watermill: services
	@cd benchmarks && $(GO) run ./cmd/bench-amqp -vs watermill -events 20000

## bench-kafka-raw: bus/kafka against raw kafka-go on an in-process kfake broker; ends with `ratio: X`
bench-kafka-raw:
	@cd benchmarks && $(GO) run ./cmd/bench-kafka -vs raw

## bench-kafka-watermill: bus/kafka against Watermill's Kafka Pub/Sub on an in-process kfake broker; ends with `ratio: X`
bench-kafka-watermill:
	@cd benchmarks && $(GO) run ./cmd/bench-kafka -vs watermill -events 20000

.PHONY: bench-router
## bench-router: a mem → mem route to 3 destinations with audit off, the audit writer alone, and both; ends with `ratio: c ÷ min(a, b)`
bench-router:
	@cd benchmarks && $(GO) run ./cmd/bench-router

.PHONY: bench-router-signed
## bench-router-signed: bench-router with every event signed (Ed25519), the route requiring signatures and every part verifying each event; ends with `ratio: c ÷ min(a, b)`
bench-router-signed:
	@cd benchmarks && $(GO) run ./cmd/bench-router -signed

.PHONY: bench-router-tracing
## bench-router-tracing: the audited mem route with tracing off and on (every span sampled, OTLP/HTTP to a receiver on 127.0.0.1), same run, rounds alternating; prints spans per event; ends with `ratio: on ÷ off`
bench-router-tracing:
	@cd benchmarks && $(GO) run ./cmd/bench-router -tracing

.PHONY: bench-ledger bench-verify-log bench-verify
## bench-ledger: leaves appended to a log's Merkle tree and stored in SQLite per second vs raw SHA-256 of the same leaves, chunk by chunk in the same run, five rounds; then inclusion proofs/s and the builder's entries/s; ends with `ratio: X` (median of the rounds')
bench-ledger:
	@out=$$($(GO) test -run '^$$' -bench '^(BenchmarkTreeVsSHA256|BenchmarkBuilder)$$' -benchtime 5x -timeout 30m ./sinks/ledgertree/) || { echo "$$out"; exit 1; }; \
	echo "$$out"; echo "$$out" | awk '/^BenchmarkTreeVsSHA256/ { for (i = 2; i <= NF; i++) { v = $$(i-1); if ($$i == "tree-leaves/s") a = v; if ($$i == "sha256-leaves/s") r = v; \
			if ($$i == "ratio-min") lo = v; if ($$i == "ratio-max") hi = v; if ($$i == "ratio") x = v; if ($$i == "proofs/s") p = v } } \
		/^BenchmarkBuilder/ { for (i = 2; i <= NF; i++) if ($$i == "entries/s") bd = $$(i-1) } \
		END { if (x == "") exit 1; print "tree (append and store): " a " leaves/s"; print "raw SHA-256: " r " leaves/s"; \
			print "inclusion proofs: " p "/s"; print "builder reading entries back: " bd " entries/s"; print "rounds: ratio " lo " to " hi; print "ratio: " x }'

## bench-verify-log: auditbus verify of a 1,000,000-entry SQLite log served by auditbus serve, against the public key; ends with `verify: N entries/s`
bench-verify-log:
	@$(GO) build -o $(CURDIR)/benchmarks/bench-verify-auditbus ./cmd/auditbus && cd benchmarks && $(GO) run ./cmd/bench-verify -bin $(CURDIR)/benchmarks/bench-verify-auditbus

## bench-verify: signed events signed and verified per second (1 KiB data, Ed25519, 3 signed extensions) vs raw crypto/ed25519 sign and verify of the same digests, chunk by chunk in the same run, five rounds; ends with `ratio: X` (median of the rounds')
bench-verify:
	@cd benchmarks && $(GO) run ./cmd/bench-sign-verify

.PHONY: bench-audit-sqlite
## bench-audit-sqlite: events/s and entries/s of 1 KiB events, each with 4 entries, through sinks.Writer into the SQLite store vs raw modernc.org/sqlite inserting the same rows (same schema, WAL, synchronous=FULL, the writer's batch sizes), same run, five rounds; ends with `ratio: X` (median of the rounds')
bench-audit-sqlite:
	@out=$$($(GO) test -run '^$$' -bench '^BenchmarkWriterVsRaw$$' -benchtime 5x -timeout 30m ./sinks/sqlite/) || { echo "$$out"; exit 1; }; \
	echo "$$out"; echo "$$out" | awk '/^BenchmarkWriterVsRaw/ { for (i = 2; i <= NF; i++) { v = $$(i-1); if ($$i == "auditbus-events/s") a = v; if ($$i == "auditbus-entries/s") ae = v; \
			if ($$i == "raw-events/s") r = v; if ($$i == "raw-entries/s") re = v; if ($$i == "ratio-min") lo = v; if ($$i == "ratio-max") hi = v; if ($$i == "ratio") x = v } } \
		END { if (x == "") exit 1; print "auditbus: " a " events/s, " ae " entries/s"; print "raw modernc.org/sqlite: " r " events/s, " re " entries/s"; \
			print "rounds: ratio " lo " to " hi; print "ratio: " x }'

.PHONY: bench-audit-clickhouse bench-audit-query
## bench-audit-clickhouse: events/s and entries/s of 1 KiB events through sinks.Writer into ClickHouse vs raw clickhouse-go PrepareBatch, same run, five rounds; ends with `ratio: X` (median of the rounds')
bench-audit-clickhouse: services
	@out=$$($(GO) test -run '^$$' -bench '^BenchmarkWriterVsRaw$$' -benchtime 5x -timeout 30m ./sinks/clickhouse/) || { echo "$$out"; exit 1; }; \
	echo "$$out"; echo "$$out" | awk '/^BenchmarkWriterVsRaw/ { for (i = 2; i <= NF; i++) { v = $$(i-1); if ($$i == "auditbus-events/s") a = v; if ($$i == "auditbus-entries/s") ae = v; \
			if ($$i == "raw-events/s") r = v; if ($$i == "raw-entries/s") re = v; if ($$i == "ratio-min") lo = v; if ($$i == "ratio-max") hi = v; if ($$i == "ratio") x = v } } \
		END { if (x == "") exit 1; print "auditbus: " a " events/s, " ae " entries/s"; print "raw clickhouse-go: " r " events/s, " re " entries/s"; \
			print "rounds: ratio " lo " to " hi; print "ratio: " x }'

## bench-audit-query: ClickHouse query latency over 1,000,000 stored events (one-hour window + type, first page of 100); prints p50 and p99
bench-audit-query: services
	@out=$$($(GO) test -run '^$$' -bench '^BenchmarkQueryLatency$$' -benchtime 1000x -timeout 30m ./sinks/clickhouse/) || { echo "$$out"; exit 1; }; \
	echo "$$out"; echo "$$out" | awk '/^BenchmarkQueryLatency/ { for (i = 2; i <= NF; i++) { if ($$i == "p50-ms") p50 = $$(i-1); if ($$i == "p99-ms") p99 = $$(i-1) } } \
		END { if (p99 == "") exit 1; print "p50: " p50 " ms"; print "p99: " p99 " ms" }'

.PHONY: bench-replay
## bench-replay: replay throughput from ClickHouse to a Kafka topic (kfake), no rate limit, vs raw kafka-go publishing the same events in the same run; ends with `ratio: X` (BENCH_REPLAY_FLAGS='-store sqlite' replays from SQLite)
bench-replay: services
	@cd benchmarks && $(GO) run ./cmd/bench-replay $(BENCH_REPLAY_FLAGS)

.PHONY: chaos
## chaos: the full fault suite against real daemons (kfake in-process; a private RabbitMQ node and ClickHouse server, never the shared ones): 10 SIGKILLs in a row, a replica of two killed, a webhook slow then down, RabbitMQ stop_app/start_app and a full node restart, the Kafka broker restarted, ClickHouse down 60 s; 50,000 events each; one `scenario:` line each, then `chaos: K scenarios, lost: L, audit-missing: A` (make test runs a short version); fails when a scenario does
chaos: services
	@bash -o pipefail -c '$(GO) test -count=1 -timeout 90m -run "^TestChaos$$" -v ./pkg/daemon/ -args -chaos.full | grep -E "^(scenario|chaos):|FAIL|^ok|panic|chaos_[a-z]*_?test.go"'

.PHONY: bench-ui
## bench-ui: the explorer in Chromium over 1,000,000 event versions in SQLite: ms from navigation until the overview's chart and a search page are drawn, and the assets' compressed size (BENCH_UI_EVENTS sets the count)
bench-ui: services
	@cd pkg/e2e && AUDITBUS_UI_BENCH_EVENTS=$${BENCH_UI_EVENTS:-1000000} $(GO) test -run '^$$' -bench '^BenchmarkExplorerLoad$$' -benchtime 1x -timeout 60m .
