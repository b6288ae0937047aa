package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/auditbus/auditbus/sinks"
)

// legacyLog is the log the rows of the events table (schemas 1 and 2)
// become entries of, so that their positions do not depend on any
// store's configuration.
const legacyLog = "legacy"

// Batch sizes of the data step's inserts.
const (
	legacyVersionBatch = 5000
	legacyEntryBatch   = 20000
)

// legacySort lets the server sort the events table's rows on disk rather
// than in memory once they pass 512 MiB.
var legacySort = ch.Settings{"max_bytes_before_external_sort": 512 << 20}

// moveToLedger is migration 0003's data step, "LEDGER <table>": every row
// of the events table becomes a version (stored once per source, id and
// digest; a later other one is a conflict) and an entry of its outcome in
// the log "legacy":
//
//   - outcome "accepted" or "": received, with the row's transport, topic,
//     partition and offset;
//   - "delivered", "filtered", "deadlettered", "poison": that kind, with
//     the row's route;
//   - a replayed copy (replay != ""): replayed, with the job and the route,
//     on the original's version (the winning row of the same source and id
//     with replay ""), or on its own when there is none.
//
// An entry's time is the row's received_ns; seqs run from 1 in
// (received_ns, source, id, replay) order, and a repeated row (the same
// entry key) makes no second entry. The step works in two passes with a
// scratch table, so neither the client nor the server holds more than a
// batch and a sort (which spills to disk): the rows by identity, for the
// versions and the entries' versions, then the entries by time. A run cut
// short starts over: it empties the ledger's tables first (no writer has
// used them before the migration is recorded). At the end the events
// table is renamed to <table>_pre_ledger, or dropped when it was empty.
func moveToLedger(ctx context.Context, conn driver.Conn, n names) error {
	old, err := tableExists(ctx, conn, n, n.table)
	if err != nil || !old {
		return err
	}
	exec := func(st string, args ...any) error {
		if err := conn.Exec(ctx, st, args...); err != nil {
			return fmt.Errorf("move %s into the ledger: %w", n.table, err)
		}
		return nil
	}
	for _, t := range []string{n.vers, n.idents, n.entries, n.trails, n.keys, n.logs} {
		if err := exec("TRUNCATE TABLE " + t + n.onCluster()); err != nil {
			return err
		}
	}
	for _, st := range []string{
		"DROP TABLE IF EXISTS " + n.migrating,
		"CREATE TABLE " + n.migrating + " AS " + n.entries + " ENGINE = MergeTree ORDER BY tuple()",
		"ALTER TABLE " + n.migrating + " ADD COLUMN tie UInt32",
	} {
		if err := exec(st); err != nil {
			return err
		}
	}
	rows, err := legacyVersions(ctx, conn, n)
	if err != nil {
		return fmt.Errorf("move %s into the ledger: %w", n.table, err)
	}
	if err := legacyEntries(ctx, conn, n); err != nil {
		return fmt.Errorf("move %s into the ledger: %w", n.table, err)
	}
	if err := exec("DROP TABLE IF EXISTS " + n.migrating); err != nil {
		return err
	}
	if rows == 0 {
		return exec("DROP TABLE IF EXISTS " + n.table + n.onCluster())
	}
	return exec("RENAME TABLE " + n.table + " TO " + n.preLedger + n.onCluster())
}

// legacyRow is a row of the events table.
type legacyRow struct {
	source, id, replay               string
	received                         int64
	typ                              string
	timeNs                           int64
	route, outcome, transport, topic string
	partition, offset                int64
	raw                              rawRow // attrs, data and flags
	item                             sinks.Item
}

// legacyVersions is the first pass: it reads the events table by identity
// and stores each identity's versions, and the entries (without seq) in
// the scratch table. It returns the number of rows read.
func legacyVersions(ctx context.Context, conn driver.Conn, n names) (int, error) {
	rows, err := conn.Query(ch.Context(ctx, ch.WithSettings(legacySort)),
		"SELECT source, id, replay, received_ns, type, time_ns, route, outcome, transport, topic, `partition`, `offset`, attrs, data, data_flags FROM "+
			n.table+" ORDER BY source, id, received_ns, version DESC")
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }()
	m := legacyMover{ctx: ctx, conn: conn, n: n, now: time.Now().UnixNano()}
	var group []legacyRow
	read := 0
	for rows.Next() {
		var r legacyRow
		if err := rows.Scan(&r.source, &r.id, &r.replay, &r.received, &r.typ, &r.timeNs, &r.route, &r.outcome, &r.transport, &r.topic,
			&r.partition, &r.offset, &r.raw.attrs, &r.raw.data, &r.raw.flags); err != nil {
			return read, err
		}
		read++
		if len(group) > 0 && (group[0].source != r.source || group[0].id != r.id) {
			if err := m.group(group); err != nil {
				return read, err
			}
			group = group[:0]
		}
		group = append(group, r)
	}
	if err := rows.Err(); err != nil {
		return read, err
	}
	if len(group) > 0 {
		if err := m.group(group); err != nil {
			return read, err
		}
	}
	return read, m.flush(true)
}

// legacyMover collects the first pass's rows into batches.
type legacyMover struct {
	ctx     context.Context
	conn    driver.Conn
	n       names
	now     int64
	vers    versionRows
	entries entryRows
	ties    []uint32
}

// group stores the versions of one identity's rows, in the order read
// (received, then the winner of a tie first), and queues their entries.
func (m *legacyMover) group(rows []legacyRow) error {
	var d attrDecoder
	orig := -1 // the winning original row
	for i := range rows {
		r := &rows[i]
		if err := r.raw.decode(&r.item, &d); err != nil {
			return err
		}
		digest, err := sinks.DigestEvent(&r.item.Event)
		if err != nil {
			return fmt.Errorf("digest event %q from %q: %w", r.id, r.source, err)
		}
		r.item.Digest = digest
		if r.replay == "" && (orig < 0 || r.received > rows[orig].received) {
			orig = i
		}
	}
	var (
		made  []sinks.Digest
		added int64
	)
	for i := range rows {
		r, v := &rows[i], &rows[i]
		if r.replay != "" && orig >= 0 {
			v = &rows[orig]
		}
		if !slices.Contains(made, v.item.Digest) {
			stored := r.received
			if stored == 0 {
				stored = m.now
			}
			added = max(stored, added+1)
			ev := encodedVersion{k: vkey{r.source, r.id, v.item.Digest}, ev: &v.item.Event, timeNs: v.timeNs, stored: stored, attrs: []byte(v.raw.attrs)}
			m.vers.add(&ev, added, len(made) > 0)
			made = append(made, v.item.Digest)
		}
		en := legacyEntry(r, v.item.Digest)
		m.entries.add(&en, en.Key())
		m.ties = append(m.ties, uint32(i))
	}
	return m.flush(false)
}

// legacyEntry is the entry of row r on the version with digest d.
func legacyEntry(r *legacyRow, d sinks.Digest) sinks.Entry {
	en := sinks.Entry{Log: legacyLog, Time: time.Unix(0, r.received).UTC(), Source: r.source, ID: r.id, Digest: d}
	switch {
	case r.replay != "":
		en.Kind, en.Replay, en.Route = sinks.KindReplayed, r.replay, r.route
	case r.outcome != "accepted" && r.outcome != sinks.KindReceived && sinks.ValidKind(r.outcome):
		en.Kind, en.Route = r.outcome, r.route
	default:
		en.Kind = sinks.KindReceived
		en.Transport, en.Topic, en.Partition, en.Offset = r.transport, r.topic, int(r.partition), r.offset
	}
	return en
}

// flush inserts the batches once they are full, or whatever they hold
// when all is set.
func (m *legacyMover) flush(all bool) error {
	if m.vers.len() > 0 && (all || m.vers.len() >= legacyVersionBatch) {
		if err := insert(m.ctx, m.conn, m.n.vers, versionInsert, m.vers.all()); err != nil {
			return fmt.Errorf("insert %d versions: %w", m.vers.len(), err)
		}
		m.vers = versionRows{}
	}
	if m.entries.len() > 0 && (all || m.entries.len() >= legacyEntryBatch) {
		if err := insert(m.ctx, m.conn, m.n.migrating, entryInsert+", tie", append(m.entries.all(), m.ties)); err != nil {
			return fmt.Errorf("insert %d entries into %s: %w", m.entries.len(), m.n.migrating, err)
		}
		m.entries, m.ties = entryRows{}, nil
	}
	return nil
}

// legacyEntries is the second pass: it reads the scratch table's entries
// in time order, keeps the first of each key and appends them to the
// legacy log, one day partition per insert.
func legacyEntries(ctx context.Context, conn driver.Conn, n names) error {
	rows, err := conn.Query(ch.Context(ctx, ch.WithSettings(legacySort)),
		"SELECT "+entryColumns+", key FROM "+n.migrating+" ORDER BY time_ns, source, id, replay, tie LIMIT 1 BY key")
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	rd := newEntryReader(false)
	var key []byte
	rd.dest = append(rd.dest, &key)
	var (
		batch entryRows
		day   uint32
		seq   uint64
	)
	send := func() error {
		if batch.len() == 0 {
			return nil
		}
		if err := insert(ctx, conn, n.entries, entryInsert, batch.all()); err != nil {
			return fmt.Errorf("insert %d entries: %w", batch.len(), err)
		}
		batch = entryRows{}
		return nil
	}
	for rows.Next() {
		en, err := rd.scan(rows)
		if err != nil {
			return err
		}
		if d := dayOf(&en); batch.len() >= legacyEntryBatch || batch.len() > 0 && d != day {
			if err := send(); err != nil {
				return err
			}
		}
		day = dayOf(&en)
		seq++
		en.Log, en.Seq = legacyLog, seq
		batch.add(&en, [16]byte(key))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return send()
}
