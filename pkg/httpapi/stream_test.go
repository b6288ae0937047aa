package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
)

// pacedStore is the env's SQLite store, except that every query after
// the first waits until the client has read the first event of the
// answer: a page read whole from the store before it is written out
// would wait for ever, a streamed one goes on.
type pacedStore struct {
	*sqlite.Store
	queries  atomic.Int32
	read     chan struct{} // closed once the client has the first event
	readOnce sync.Once
	mu       sync.Mutex
	limits   []int // the limit of each query
}

func (s *pacedStore) Query(ctx context.Context, q sinks.Query) (sinks.Page, error) {
	s.mu.Lock()
	s.limits = append(s.limits, q.Limit)
	s.mu.Unlock()
	if s.queries.Add(1) > 1 {
		select {
		case <-s.read:
		case <-ctx.Done():
			return sinks.Page{}, ctx.Err()
		case <-time.After(30 * time.Second):
			return sinks.Page{}, errors.New("the client has not had the first event after 30 s: the answer is not streamed")
		}
	}
	return s.Store.Query(ctx, q)
}

// TestQueryPageStreamed: GET /v1/events reads its page from the store a
// chunk at a time and sends each before reading the next, so the client
// reads the first events of a page while the store has not yet been
// asked for the rest.
func TestQueryPageStreamed(t *testing.T) {
	var paced *pacedStore
	e := newEnv(t, func(o *httpapi.Options) {
		paced = &pacedStore{Store: o.Store.(*sqlite.Store), read: make(chan struct{})}
		o.Store = paced
		o.QueryMaxBytes = 1 << 20
	})
	const n = 40
	data := `"` + strings.Repeat("s", 10_000) + `"`
	for i := range n {
		e.appendRecords(t, sinks.Record{Event: ledgerEvent("/stream", fmt.Sprintf("s-%02d", i), data),
			Entries: []sinks.Entry{{Time: ledgerBase, Kind: sinks.KindReceived, Transport: "http"}}})
	}
	paced.queries.Store(0)

	hr, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/events?source=/stream&limit=100", nil)
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+e.read)
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	// Read up to the end of the first event, then let the store go on.
	br := bufio.NewReader(res.Body)
	if _, err := br.ReadString('}'); err != nil {
		t.Fatalf("the first event: %v", err)
	}
	paced.readOnce.Do(func() { close(paced.read) })
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("the rest of the page: %v", err)
	}
	if got := strings.Count(string(rest), `"id":"s-`); got != n-1 {
		t.Errorf("%d more events after the first, want %d", got, n-1)
	}
	paced.mu.Lock()
	defer paced.mu.Unlock()
	if len(paced.limits) < 2 || paced.limits[0] >= n {
		t.Errorf("the store was asked for %v versions; want the page in chunks, the first smaller than the page", paced.limits)
	}
}
