package sinktest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// model is what a store should hold after the suite's appends: the
// contract of sinks.Store written as plainly as it can be, against which
// every answer of the store is checked.
type model struct {
	versions []*version // in the order they were first stored
	byID     map[[2]string][]*version
	keys     map[[16]byte]bool
	logs     map[string][]sinks.Entry // each log's entries, by Seq
	// sizes is each log's last Seq, which retention does not lower:
	// positions are never given twice.
	sizes map[string]uint64
}

// version is one stored version with its trail.
type version struct {
	item sinks.Item
	// stored is the day the version belongs to for retention.
	stored time.Time
}

func newModel() *model {
	return &model{byID: map[[2]string][]*version{}, keys: map[[16]byte]bool{}, logs: map[string][]sinks.Entry{},
		sizes: map[string]uint64{}}
}

// add applies recs as an Append to log and returns what the Append
// should report. The suite sets every entry's Time, so the model needs
// no clock.
func (m *model) add(log string, recs []sinks.Record) sinks.AppendResult {
	var res sinks.AppendResult
	for i := range recs {
		r := &recs[i]
		d, err := sinks.DigestEvent(&r.Event)
		if err != nil {
			panic(fmt.Sprintf("sinktest: digest of a test event: %v", err))
		}
		id := [2]string{r.Event.Source(), r.Event.ID()}
		v := m.version(id, d)
		if v == nil {
			v = &version{item: sinks.Item{Event: r.Event.Clone(), Digest: d, Time: r.Time().UTC()}}
			v.stored = v.item.Time
			if len(r.Entries) > 0 {
				v.stored = r.Entries[0].Time
			}
			if prev := m.byID[id]; len(prev) > 0 {
				v.item.Conflict = true
				res.Conflicts = append(res.Conflicts, sinks.Conflict{Source: id[0], ID: id[1], Digest: d, Earlier: prev[0].item.Digest})
			}
			m.byID[id] = append(m.byID[id], v)
			m.versions = append(m.versions, v)
			res.Versions++
		}
		for _, en := range r.Entries {
			if en.Time.IsZero() {
				panic("sinktest: the model needs entry times")
			}
			en.Source, en.ID, en.Digest = id[0], id[1], d
			k := en.Key()
			if m.keys[k] {
				res.Duplicates++
				continue
			}
			m.keys[k] = true
			m.sizes[log]++
			en.Log, en.Seq = log, m.sizes[log]
			en.Time = en.Time.UTC()
			m.logs[log] = append(m.logs[log], en)
			v.item.Trail = append(v.item.Trail, en)
			slices.SortStableFunc(v.item.Trail, trailOrder)
			res.Entries++
		}
	}
	return res
}

func (m *model) version(id [2]string, d sinks.Digest) *version {
	for _, v := range m.byID[id] {
		if v.item.Digest == d {
			return v
		}
	}
	return nil
}

// trailOrder orders entries by (Time, Log, Seq).
func trailOrder(a, b sinks.Entry) int {
	return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Log, b.Log), cmp.Compare(a.Seq, b.Seq))
}

// itemOrder orders items by (time, source, id, digest).
func itemOrder(a, b *sinks.Item) int {
	return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Event.Source(), b.Event.Source()),
		cmp.Compare(a.Event.ID(), b.Event.ID()), bytes.Compare(a.Digest[:], b.Digest[:]))
}

// get returns the versions of source and id in the order first stored.
func (m *model) get(source, id string) []sinks.Item {
	var out []sinks.Item
	for _, v := range m.byID[[2]string{source, id}] {
		out = append(out, v.item)
	}
	return out
}

// log returns log's entries by Seq.
func (m *model) log(name string) []sinks.Entry { return m.logs[name] }

// size is the last Seq of log.
func (m *model) size(name string) uint64 { return m.sizes[name] }

// query returns every item matching q's filters in q's order, ignoring
// its cursor and limit.
func (m *model) query(q sinks.Query) []sinks.Item {
	var out []sinks.Item
	for _, v := range m.versions {
		if matches(&v.item, q) {
			out = append(out, v.item)
		}
	}
	slices.SortFunc(out, func(a, b sinks.Item) int { return itemOrder(&a, &b) })
	if q.Desc {
		slices.Reverse(out)
	}
	return out
}

// matches is Query's filter, as package sinks documents it.
func matches(it *sinks.Item, q sinks.Query) bool {
	e := &it.Event
	switch {
	case !q.From.IsZero() && it.Time.Before(q.From),
		!q.To.IsZero() && !it.Time.Before(q.To),
		q.Type != "" && !q.TypePrefix && e.Type() != q.Type,
		q.Type != "" && q.TypePrefix && !strings.HasPrefix(e.Type(), q.Type),
		q.Source != "" && e.Source() != q.Source,
		q.Subject != "" && e.Subject() != q.Subject,
		q.ID != "" && e.ID() != q.ID,
		!q.Within.Allows(e.Source(), e.Type()):
		return false
	}
	if q.Route == "" && q.Destination == "" && q.Kind == "" && q.ReceivedFrom.IsZero() && q.ReceivedTo.IsZero() {
		return true
	}
	for i, en := range it.Trail {
		if entryMatches(&en, q) && (!q.Redrivable || !redriven(it.Trail, i)) {
			return true
		}
	}
	return false
}

func entryMatches(en *sinks.Entry, q sinks.Query) bool {
	return (q.Route == "" || en.Route == q.Route) && (q.Destination == "" || en.Destination == q.Destination) &&
		(q.Kind == "" || en.Kind == q.Kind) && (q.ReceivedFrom.IsZero() || !en.Time.Before(q.ReceivedFrom)) &&
		(q.ReceivedTo.IsZero() || en.Time.Before(q.ReceivedTo))
}

// redriven reports whether a delivered entry of the same route and
// destination follows trail[i] in the trail.
func redriven(trail []sinks.Entry, i int) bool {
	dead := trail[i]
	for _, en := range trail[i+1:] {
		if en.Kind == sinks.KindDelivered && en.Route == dead.Route && en.Destination == dead.Destination {
			return true
		}
	}
	return false
}

// retain removes what Retain(cutoff) removes and returns the number of
// days it removed.
func (m *model) retain(cutoff time.Time) int {
	day := cutoff.UTC().Truncate(24 * time.Hour)
	days := map[time.Time]bool{}
	var kept []*version
	m.byID = map[[2]string][]*version{}
	for _, v := range m.versions {
		if v.stored.Before(day) {
			days[v.stored.UTC().Truncate(24*time.Hour)] = true
			continue
		}
		v.item.Trail = slices.DeleteFunc(v.item.Trail, func(en sinks.Entry) bool { return en.Time.Before(day) })
		kept = append(kept, v)
		id := [2]string{v.item.Event.Source(), v.item.Event.ID()}
		m.byID[id] = append(m.byID[id], v)
	}
	m.versions = kept
	for name, l := range m.logs {
		m.logs[name] = slices.DeleteFunc(l, func(en sinks.Entry) bool {
			if en.Time.Before(day) {
				days[en.Time.Truncate(24*time.Hour)] = true
				return true
			}
			return false
		})
	}
	return len(days)
}

// sameResult fails unless got reports what want does; conflicts are
// compared as sets, each got's Earlier needing only to be some version
// stored before it.
func sameResult(t *testing.T, want, got sinks.AppendResult) {
	t.Helper()
	if got.Versions != want.Versions || got.Entries != want.Entries || got.Duplicates != want.Duplicates ||
		len(got.Conflicts) != len(want.Conflicts) {
		t.Errorf("Append result: %d versions, %d entries, %d duplicates, %d conflicts; want %d, %d, %d, %d",
			got.Versions, got.Entries, got.Duplicates, len(got.Conflicts),
			want.Versions, want.Entries, want.Duplicates, len(want.Conflicts))
		return
	}
	for _, w := range want.Conflicts {
		if !slices.ContainsFunc(got.Conflicts, func(c sinks.Conflict) bool {
			return c.Source == w.Source && c.ID == w.ID && c.Digest == w.Digest && !c.Earlier.IsZero() && c.Earlier != c.Digest
		}) {
			t.Errorf("Append result: conflicts %+v do not name %s/%s %s", got.Conflicts, w.Source, w.ID, w.Digest)
		}
	}
}

// sameItem fails unless got holds exactly what want holds: the event
// bit-exact, the digest, the conflict flag, the time and, unless
// eventsOnly, the whole trail.
func (e *env) sameItem(t *testing.T, want, got *sinks.Item, eventsOnly bool) {
	t.Helper()
	name := itemKey(want)
	sameEvent(t, name, &want.Event, &got.Event)
	if got.Digest != want.Digest || !got.Time.Equal(want.Time) {
		t.Errorf("%s: digest %s time %v, want %s %v", name, got.Digest, got.Time, want.Digest, want.Time)
	}
	if eventsOnly {
		return
	}
	if got.Conflict != want.Conflict {
		t.Errorf("%s: conflict %v, want %v", name, got.Conflict, want.Conflict)
	}
	if len(got.Trail) != len(want.Trail) {
		t.Errorf("%s: trail of %d entries, want %d:\n got %s\nwant %s", name, len(got.Trail), len(want.Trail),
			trailString(got.Trail), trailString(want.Trail))
		return
	}
	for i := range want.Trail {
		sameEntry(t, fmt.Sprintf("%s trail %d", name, i), &want.Trail[i], &got.Trail[i])
	}
}

// sameEvent fails unless got is want bit-exact: every attribute and
// extension, the data bytes, nil data apart from empty data, and the
// base64 flag of structured JSON.
func sameEvent(t *testing.T, name string, want, got *event.Event) {
	t.Helper()
	if !bytes.Equal(want.DataEncoded, got.DataEncoded) || (want.DataEncoded == nil) != (got.DataEncoded == nil) ||
		want.DataBase64 != got.DataBase64 {
		t.Errorf("%s: data\n got %q (nil %v, base64 %v)\nwant %q (nil %v, base64 %v)", name,
			got.DataEncoded, got.DataEncoded == nil, got.DataBase64, want.DataEncoded, want.DataEncoded == nil, want.DataBase64)
	}
	if got.Context == nil {
		t.Errorf("%s: event has no context", name)
		return
	}
	// Extension maps marshal in no fixed order, so compare decoded JSON of
	// the attributes.
	w, g := *want, *got
	w.DataEncoded, g.DataEncoded = nil, nil
	var wm, gm map[string]any
	wb, err1 := json.Marshal(w)
	gb, err2 := json.Marshal(g)
	if err1 != nil || err2 != nil || json.Unmarshal(wb, &wm) != nil || json.Unmarshal(gb, &gm) != nil {
		t.Fatalf("%s: marshal: %v %v", name, err1, err2)
	}
	if !reflect.DeepEqual(wm, gm) || want.SpecVersion() != got.SpecVersion() {
		t.Errorf("%s: event\n got %s\nwant %s", name, gb, wb)
	}
	// And every attribute reads back to the same canonical form.
	if d, err := sinks.DigestEvent(got); err != nil || !sameDigest(want, got) {
		t.Errorf("%s: the event read back has digest %s, %v; the one stored another", name, d, err)
	}
}

// sameDigest reports whether both events have one digest.
func sameDigest(a, b *event.Event) bool {
	da, err1 := sinks.DigestEvent(a)
	db, err2 := sinks.DigestEvent(b)
	return err1 == nil && err2 == nil && da == db
}

// sameEntry fails unless got is want in every field.
func sameEntry(t *testing.T, name string, want, got *sinks.Entry) {
	t.Helper()
	w, g := *want, *got
	if !g.Time.Equal(w.Time) {
		t.Errorf("%s: time %v, want %v", name, g.Time, w.Time)
	}
	w.Time, g.Time = time.Time{}, time.Time{}
	if w != g {
		t.Errorf("%s:\n got %+v\nwant %+v", name, g, w)
	}
}

// itemKey is "source/id#" and the digest's first hex digits.
func itemKey(it *sinks.Item) string {
	return it.Event.Source() + "/" + it.Event.ID() + "#" + it.Digest.String()[7:15]
}

// itemKeys returns the keys of its in order.
func itemKeys(its []sinks.Item) []string {
	ks := make([]string, len(its))
	for i := range its {
		ks[i] = itemKey(&its[i])
	}
	return ks
}

// trailString shows a trail in a failure message.
func trailString(tr []sinks.Entry) string {
	var b strings.Builder
	for _, en := range tr {
		fmt.Fprintf(&b, "[%s %d %s %s/%s %s] ", en.Log, en.Seq, en.Kind, en.Route, en.Destination, en.Time.Format(time.RFC3339Nano))
	}
	return b.String()
}

// fingerprint is an item's key, time, data and, unless eventsOnly, its
// conflict flag and trail: what tells two answers apart.
func fingerprint(it *sinks.Item, eventsOnly bool) string {
	f := fmt.Sprintf("%s %d %q", itemKey(it), it.Time.UnixNano(), it.Event.DataEncoded)
	if eventsOnly {
		return f
	}
	return fmt.Sprintf("%s %v %s", f, it.Conflict, trailString(it.Trail))
}
