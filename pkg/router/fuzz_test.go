package router_test

import (
	"testing"

	"github.com/auditbus/auditbus/pkg/router"
)

// FuzzParseRoutes: whatever a routes file holds, ParseRoutes never panics,
// and either returns routes that each have a name, a source and a
// destination, or an error naming the file.
func FuzzParseRoutes(f *testing.F) {
	for _, s := range []string{
		"routes:\n  - name: orders\n    source: {transport: mem, topic: o}\n    filter: {prefix: {type: com.example.}}\n    destinations: [{transport: mem, topic: b}]\n    dead_letter: none\n",
		"routes:\n  - name: billing\n    source: {http: true}\n    destinations:\n      - {name: ledger, webhook: {url: \"https://x/y\", timeout: 2s, headers: {A: b}}}\n    retry: {max_attempts: 3, initial_backoff: 10ms}\n    dead_letter: {transport: mem, topic: dlq}\n",
		"routes:\n  - name: r\n    source: {transport: kafka, topic: o}\n    destinations: [{transport: mem, topic: b}]\n    retry: {max_backoff: later}\n",
		"routes: []\n", "a: &a [*a, *a]\n", "---\n---\n", "routes: 5\n", "", "routes:\n  - {}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		routes, err := router.ParseRoutes("routes.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		for _, r := range routes {
			if r.Name == "" || len(r.Destinations) == 0 {
				t.Fatalf("accepted a route without a name or destinations: %+v", r)
			}
		}
	})
}
