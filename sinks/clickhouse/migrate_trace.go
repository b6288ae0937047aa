package clickhouse

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// addTraceColumns is migration 0005's TRACECOLUMNS step: trace_id and
// span_id on the trails, then the entries, each added only where missing.
func addTraceColumns(ctx context.Context, conn driver.Conn, n names) error {
	return addEntryColumns(ctx, conn, n, "trace_id", "span_id")
}

// addSignatureColumn is migration 0006's SIGNATURECOLUMN step: signature
// on the trails, then the entries, added only where missing.
func addSignatureColumn(ctx context.Context, conn driver.Conn, n names) error {
	return addEntryColumns(ctx, conn, n, "signature")
}

// addEntryColumns adds cols, each a String defaulting to empty, to the
// trails and then the entries, each only where missing, so that the step
// can run again after being cut short (18.16 has no ADD COLUMN IF NOT EXISTS).
// The trails get them first, so that the view copying entries there
// always finds the columns.
func addEntryColumns(ctx context.Context, conn driver.Conn, n names, cols ...string) error {
	for _, table := range []string{n.trails, n.entries} {
		for _, col := range cols {
			var have uint64
			err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
				n.dbRaw, tableName(table), col).Scan(&have)
			if err != nil {
				return fmt.Errorf("look up column %s of %s: %w", col, table, err)
			}
			if have > 0 {
				continue
			}
			if err := conn.Exec(ctx, "ALTER TABLE "+table+n.onCluster()+" ADD COLUMN "+col+" String DEFAULT ''"); err != nil {
				return fmt.Errorf("add column %s to %s: %w", col, table, err)
			}
		}
	}
	return nil
}
