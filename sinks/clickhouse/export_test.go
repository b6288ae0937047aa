package clickhouse

import "context"

// OpenAtSchema is Open applying the schema migrations up to version only,
// for tests of what later migrations do to an existing database.
func OpenAtSchema(ctx context.Context, cfg Config, version int) (*Store, error) {
	return openAt(ctx, cfg, version)
}
