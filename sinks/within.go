package sinks

import (
	"fmt"
	"strings"
)

// Within narrows a query to what a reader may see: the versions whose
// source starts with one of SourcePrefixes and whose type starts with one
// of TypePrefixes. A nil list does not narrow; an empty, non-nil list lets
// nothing through. The daemon sets it from the reader's permissions, never
// from a query parameter, so a reader cannot widen it.
type Within struct {
	SourcePrefixes []string
	TypePrefixes   []string
}

// Narrows reports whether w leaves anything out.
func (w Within) Narrows() bool { return w.SourcePrefixes != nil || w.TypePrefixes != nil }

// Covers reports whether w allows every version o allows: o is w or
// narrower.
func (w Within) Covers(o Within) bool {
	return coversList(w.SourcePrefixes, o.SourcePrefixes) && coversList(w.TypePrefixes, o.TypePrefixes)
}

func coversList(w, o []string) bool {
	if w == nil {
		return true
	}
	if o == nil {
		return false
	}
	for _, p := range o {
		if !hasAnyPrefix(p, w) {
			return false
		}
	}
	return true
}

// Allows reports whether a version of source and typ is inside w.
func (w Within) Allows(source, typ string) bool {
	return hasAnyPrefix(source, w.SourcePrefixes) && hasAnyPrefix(typ, w.TypePrefixes)
}

// SQL builds w's WHERE conditions for a store: for each narrowed column,
// the OR of cond(column, prefix) over its prefixes, or "0" for an empty
// list; cond returns one condition and its bound arguments.
func (w Within) SQL(sourceCol, typeCol string, cond func(col, prefix string) (string, []any)) (conds []string, args []any) {
	for _, c := range [...]struct {
		col      string
		prefixes []string
	}{{sourceCol, w.SourcePrefixes}, {typeCol, w.TypePrefixes}} {
		switch {
		case c.prefixes == nil:
			continue
		case len(c.prefixes) == 0:
			conds = append(conds, "0")
			continue
		}
		ors := make([]string, len(c.prefixes))
		for i, p := range c.prefixes {
			var a []any
			ors[i], a = cond(c.col, p)
			args = append(args, a...)
		}
		conds = append(conds, "("+strings.Join(ors, " OR ")+")")
	}
	return conds, args
}

// String describes w for messages: `sources "/shop"...; types "com.example."...`.
func (w Within) String() string {
	if !w.Narrows() {
		return "everything"
	}
	var parts []string
	if w.SourcePrefixes != nil {
		parts = append(parts, "sources starting with "+quoteList(w.SourcePrefixes))
	}
	if w.TypePrefixes != nil {
		parts = append(parts, "types starting with "+quoteList(w.TypePrefixes))
	}
	return strings.Join(parts, " and ")
}

func quoteList(list []string) string {
	if len(list) == 0 {
		return "nothing (an empty list)"
	}
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, " or ")
}

// hasAnyPrefix reports whether s starts with one of prefixes; a nil list
// allows every s.
func hasAnyPrefix(s string, prefixes []string) bool {
	if prefixes == nil {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
