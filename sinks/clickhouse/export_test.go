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
