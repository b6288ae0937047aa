// Package e2e holds tests that need modules no library user should have to
// download: the explorer driven in Chromium (chromedp), the CLI on a
// pseudo-terminal (creack/pty), and, in e2e/kafka, bus/kafka against a
// Kafka broker (kfake) and other Kafka clients (kcat, the CloudEvents
// SDK's sarama binding). It is a module of its own so that those modules
// stay out of github.com/auditbus/auditbus's go.mod; `make test` runs it.
package e2e
