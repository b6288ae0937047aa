// Package check holds the tests that keep the deployment assets in deploy/
// and docker-compose.yaml true to the code: every metric that the
// Prometheus rules and the Grafana dashboard query is one the daemon
// registers, every AUDITBUS_* variable they set is one the code reads and
// its value is accepted, and the routes file of the compose stack is
// valid. It has no code of its own.
package check
