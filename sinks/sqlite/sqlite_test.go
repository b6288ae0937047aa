package sqlite_test

import (
	"context"
	"testing"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sinktest"
	"github.com/auditbus/auditbus/sinks/sqlite"
)

func open(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	sinktest.TestStore(t, sinktest.Features{
		Reopen: func(t *testing.T, s sinks.Store) sinks.Store {
			dir := s.(*sqlite.Store).Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, dir)
		},
	}, func(t *testing.T) sinks.Store { return open(t, t.TempDir()) })
}
