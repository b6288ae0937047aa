package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// LegacyLog is the log that holds the entries migrated from a store
// written before the ledger, so their positions do not depend on
// configuration.
const LegacyLog = "legacy"

// legacyBatch is how many old rows the data step reads at a time.
const legacyBatch = 1000

// oldRow is a row of the events table of schemas 1 and 2.
type oldRow struct {
	source, id, replay  string
	timeNs, receivedNs  int64
	typ, subject        string
	attrs, data         []byte
	b64                 bool
	transport, topic    string
	partition           int
	offset              int64
	route, outcome      string
	event               event.Event
	digest              sinks.Digest
	entryTime, storedNs int64
}

// ledgerFromEvents is migration 3's data step: every row of the events
// table becomes a version (unless it is a replayed copy of a stored
// original) and one entry of the log LegacyLog, in (received_ns, source,
// id, replay) order. A row's outcome gives the entry's kind: accepted or
// none is a reception from the row's transport, topic, partition and
// offset; delivered, filtered, deadlettered and poison are that kind on
// the row's route. A replayed copy (replay set) is a replayed entry of the
// job on the original's version, or on its own version when there is no
// original. Entry times are the rows' received_ns.
func ledgerFromEvents(ctx context.Context, tx *sql.Tx) error {
	var seq int64
	var after *oldRow
	for {
		rows, err := readOldRows(ctx, tx, after)
		if err != nil {
			return err
		}
		for i := range rows {
			r := &rows[i]
			inserted, err := migrateRow(ctx, tx, r, seq+1)
			if err != nil {
				return fmt.Errorf("event %q from %q (replay %q): %w", r.id, r.source, r.replay, err)
			}
			if inserted {
				seq++
			}
		}
		if len(rows) < legacyBatch {
			break
		}
		after = &rows[len(rows)-1]
	}
	if seq == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO logs (name, size) VALUES (?, ?)`, LegacyLog, seq)
	return err
}

const oldColumns = `source, id, replay, time_ns, received_ns, type, subject, attrs, data, data IS NULL, data_base64,
	transport, topic, partition, "offset", route, outcome`

// readOldRows reads the next legacyBatch rows after after (nil: from the
// first), in the data step's order.
func readOldRows(ctx context.Context, tx *sql.Tx, after *oldRow) ([]oldRow, error) {
	stmt := `SELECT ` + oldColumns + ` FROM events`
	var args []any
	if after != nil {
		stmt += ` WHERE (received_ns, source, id, replay) > (?, ?, ?, ?)`
		args = []any{after.receivedNs, after.source, after.id, after.replay}
	}
	stmt += ` ORDER BY received_ns, source, id, replay LIMIT ?`
	rows, err := tx.QueryContext(ctx, stmt, append(args, legacyBatch)...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []oldRow
	for rows.Next() {
		var r oldRow
		if err := scanOldRow(rows, &r); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// scanOldRow reads oldColumns into r and computes its event's digest.
func scanOldRow(sc interface{ Scan(...any) error }, r *oldRow) error {
	var none bool
	if err := sc.Scan(&r.source, &r.id, &r.replay, &r.timeNs, &r.receivedNs, &r.typ, &r.subject, &r.attrs, &r.data, &none, &r.b64,
		&r.transport, &r.topic, &r.partition, &r.offset, &r.route, &r.outcome); err != nil {
		return err
	}
	if r.data == nil && !none {
		r.data = []byte{}
	}
	r.event = event.New()
	if err := r.event.UnmarshalJSON(r.attrs); err != nil {
		return fmt.Errorf("decode event %q from %q: %w", r.id, r.source, err)
	}
	r.event.DataEncoded, r.event.DataBase64 = r.data, r.b64
	var err error
	if r.digest, err = sinks.DigestEvent(&r.event); err != nil {
		return err
	}
	// Rows of schema 1 may have no reception time; their indexed time is
	// the best there is.
	r.entryTime = r.receivedNs
	if r.entryTime == 0 {
		r.entryTime = r.timeNs
	}
	r.storedNs = r.entryTime
	return nil
}

// migrateRow stores r's version and entry, at seq if the entry is new,
// and reports whether it was.
func migrateRow(ctx context.Context, tx *sql.Tx, r *oldRow, seq int64) (bool, error) {
	en := sinks.Entry{Source: r.source, ID: r.id, Digest: r.digest}
	switch r.outcome {
	case "delivered", "filtered", "deadlettered", "poison":
		en.Kind, en.Route = r.outcome, r.route
	default: // accepted, or not known
		en.Kind, en.Transport, en.Topic, en.Partition, en.Offset = sinks.KindReceived, r.transport, r.topic, r.partition, r.offset
	}
	own := true
	if r.replay != "" {
		en = sinks.Entry{Kind: sinks.KindReplayed, Source: r.source, ID: r.id, Digest: r.digest, Route: r.route, Replay: r.replay}
		var orig oldRow
		err := scanOldRow(tx.QueryRowContext(ctx, `SELECT `+oldColumns+` FROM events WHERE source = ? AND id = ? AND replay = ''`,
			r.source, r.id), &orig)
		switch {
		case err == nil:
			own, en.Digest = false, orig.digest
		case !errors.Is(err, sql.ErrNoRows):
			return false, fmt.Errorf("read the original: %w", err)
		}
	}
	if own {
		if err := migrateVersion(ctx, tx, r); err != nil {
			return false, err
		}
	}
	key := en.Key()
	res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO entries (log, seq, key, time_ns, kind, source, id, digest,
	transport, topic, partition, "offset", route, replay) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		LegacyLog, seq, key[:], r.entryTime, en.Kind, en.Source, en.ID, en.Digest[:],
		en.Transport, en.Topic, en.Partition, en.Offset, en.Route, en.Replay)
	if err != nil {
		return false, fmt.Errorf("insert entry: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// migrateVersion stores r's event as a version unless it is stored,
// marked as a conflict when another version of its identity is.
func migrateVersion(ctx context.Context, tx *sql.Tx, r *oldRow) error {
	rows, err := tx.QueryContext(ctx, `SELECT digest FROM versions WHERE source = ? AND id = ?`, r.source, r.id)
	if err != nil {
		return fmt.Errorf("read versions: %w", err)
	}
	conflict := false
	for rows.Next() {
		var d []byte
		if err := rows.Scan(&d); err != nil {
			_ = rows.Close()
			return fmt.Errorf("read versions: %w", err)
		}
		if bytes.Equal(d, r.digest[:]) {
			_ = rows.Close()
			return nil
		}
		conflict = true
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read versions: %w", err)
	}
	var data any
	if r.data != nil {
		data = r.data
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO versions (source, id, digest, time_ns, stored_ns, type, subject, attrs, data,
	data_base64, conflict) VALUES (?,?,?,?,?,?,?,?,?,?,?)`, r.source, r.id, r.digest[:], r.timeNs, r.storedNs, r.typ, r.subject,
		r.attrs, data, r.b64, conflict); err != nil {
		return fmt.Errorf("insert version: %w", err)
	}
	return nil
}
