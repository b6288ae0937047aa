package httpapi

import (
	"errors"
	"testing"

	"github.com/auditbus/auditbus/pkg/replay"
)

// FuzzReplayRequest: whatever the body of POST /v1/replays, the parser
// never panics, and it either accepts a request whose filter and
// destination check, or refuses it with a *replay.FieldError naming a
// field or as malformed JSON.
func FuzzReplayRequest(f *testing.F) {
	for _, s := range []string{
		`{"filter":{"from":"2026-05-01T00:00:00Z","to":"2026-05-02T00:00:00Z","type":"com.example.order.*"},"destination":{"transport":"kafka","topic":"orders-replayed"},"rate":1000,"name":"orders again"}`,
		`{"filter":{"source":"/s","id":"1","outcome":"deadlettered","route":"r","destination":"d","received_from":"2026-01-01T00:00:00Z"},"destination":{"webhook":{"url":"https://x/y","timeout":"5s","headers":{"Authorization":"a"}}}}`,
		`{"filter":{},"destination":{"route":"billing","destination":"ledger"},"rate":-1}`,
		`{"filter":{"from":"x"},"destination":{"webhook":{"url":5}}}`,
		`{"filter":{"to":"2026-05-01T00:00:00Z","from":"2026-05-02T00:00:00Z"}}`,
		`{"nope":1}`, `[]`, `{}`, `{"rate":1e400}`, `{"filter":{"limit":3}}`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ReplayRequest
		err := decodeBody(body, replayFields, &req)
		if err == nil {
			if _, err = req.Filter.query(); err == nil && req.Destination != nil {
				err = req.Destination.check()
			}
		}
		if err == nil {
			return
		}
		if _, ok := errors.AsType[*replay.FieldError](err); !ok && !errors.Is(err, errMalformed) {
			t.Fatalf("refusal %v (%T) is neither a FieldError nor malformed JSON", err, err)
		}
		if len(err.Error()) > 4096+len(body) {
			t.Fatalf("refusal of %d bytes for a body of %d", len(err.Error()), len(body))
		}
	})
}
