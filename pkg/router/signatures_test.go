package router_test

import (
	"strings"
	"testing"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/router"
)

func TestSignaturesField(t *testing.T) {
	const file = `routes:
  - name: a
    source: {http: true}
    destinations: [{transport: mem, topic: out}]
    dead_letter: none
    signatures: %s
`
	for value, want := range map[string]any{
		"required": true, "optional": false, "~": false,
		"maybe":      `sig.yaml: route "a" (line 6): signatures: "maybe" is neither required nor optional`,
		"[required]": `signatures: must be a single value`,
	} {
		routes, err := router.ParseRoutes("sig.yaml", []byte(strings.Replace(file, "%s", value, 1)))
		switch w := want.(type) {
		case bool:
			if err != nil || routes[0].RequireSignatures != w {
				t.Errorf("signatures: %s: %v, %v; want RequireSignatures %v", value, routes, err, w)
			}
		case string:
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("signatures: %s: %v; want %s", value, err, w)
			}
		}
	}
	routes, err := router.ParseRoutes("sig.yaml", []byte(strings.Replace(file, "%s", "required", 1)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = router.New(routes, router.Options{Transports: map[string]bus.Transport{"mem": mem.New()}})
	if err == nil || !strings.Contains(err.Error(), `route "a": signatures: required, but the daemon has no signer registry: set AUDITBUS_SIGNERS_FILE`) {
		t.Errorf("New without a registry: %v", err)
	}
}
