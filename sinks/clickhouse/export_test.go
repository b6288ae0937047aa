package clickhouse

import "context"

// MigrateTo applies the schema migrations up to version only, for tests
// of what later migrations do to an existing database.
func MigrateTo(ctx context.Context, cfg Config, version int) error {
	s, err := openAt(ctx, cfg, version)
	if err != nil {
		return err
	}
	return s.conn.Close()
}

// OpenAt opens a store whose schema is migrated up to version only, for
// tests that fill a database as an older build would.
func OpenAt(ctx context.Context, cfg Config, version int) (*Store, error) {
	s, err := openAt(ctx, cfg, version)
	if err != nil {
		return nil, err
	}
	if s.seq, err = s.lastSeq(ctx); err != nil {
		_ = s.conn.Close()
		return nil, err
	}
	close(s.done)
	return s, nil
}

// FillCounts runs migration 0007's COUNTS step again, as a migration cut
// short and started over does.
func (s *Store) FillCounts(ctx context.Context) error { return fillCounts(ctx, s.conn, s.n) }
