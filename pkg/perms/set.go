// Package perms says what a principal may say and see: the topics and
// routes it may publish to, the source prefixes it may claim and the type
// prefixes it may send, and so which stored events it may read. A Set
// comes from a token (JWT claims or Macaroon caveats) and from a policy
// file keyed by subject (LoadPolicy); Sets only ever narrow each other
// (Intersect), within the scopes the token grants.
package perms

import (
	"fmt"
	"slices"
	"strings"

	cliptext "github.com/auditbus/auditbus/bus/clip"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/sinks"
)

// Rule restricts one dimension of a Set. A nil *Rule allows everything.
type Rule struct {
	// Allow lists the values (topics, routes) or prefixes (sources,
	// types) allowed. Empty allows nothing.
	Allow []string
	// From says where the rule came from, for messages: `the token's
	// caveat "source-prefix = /shop"`, `policy.yaml line 4 (principal
	// "cart")`.
	From string
}

// Set is what one principal may do. The zero Set allows everything: the
// behaviour of a principal nobody restricted.
type Set struct {
	Topics         *Rule
	Routes         *Rule
	SourcePrefixes *Rule
	TypePrefixes   *Rule
}

// Restricted reports whether s leaves anything out.
func (s Set) Restricted() bool {
	return s.Topics != nil || s.Routes != nil || s.SourcePrefixes != nil || s.TypePrefixes != nil
}

// Reads reports whether s narrows what its principal may read: its
// source or type prefixes.
func (s Set) Reads() bool { return s.SourcePrefixes != nil || s.TypePrefixes != nil }

// Intersect is what both s and o allow: a token can only narrow what a
// policy allows, a caveat what the caveats before it allow.
func (s Set) Intersect(o Set) Set {
	return Set{
		Topics:         intersect(s.Topics, o.Topics, exact),
		Routes:         intersect(s.Routes, o.Routes, exact),
		SourcePrefixes: intersect(s.SourcePrefixes, o.SourcePrefixes, prefixes),
		TypePrefixes:   intersect(s.TypePrefixes, o.TypePrefixes, prefixes),
	}
}

func intersect(a, b *Rule, both func(a, b []string) []string) *Rule {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return &Rule{Allow: both(a.Allow, b.Allow), From: a.From + " and " + b.From}
}

// exact is the values in both lists.
func exact(a, b []string) []string {
	out := []string{}
	for _, v := range a {
		if slices.Contains(b, v) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// prefixes is the prefix list whose strings are those that start with a
// prefix of a and with one of b: for each pair where one prefix starts
// with the other, the longer.
func prefixes(a, b []string) []string {
	var both []string
	for _, x := range a {
		for _, y := range b {
			switch {
			case strings.HasPrefix(y, x):
				both = append(both, y)
			case strings.HasPrefix(x, y):
				both = append(both, x)
			}
		}
	}
	return Minimal(both)
}

// Minimal drops the prefixes another prefix of the list already covers,
// and repeats: the shortest list allowing the same strings, sorted.
func Minimal(list []string) []string {
	out := []string{}
	sorted := slices.Clone(list)
	slices.Sort(sorted)
	for _, p := range sorted {
		if !slices.ContainsFunc(out, func(q string) bool { return strings.HasPrefix(p, q) }) {
			out = append(out, p)
		}
	}
	return out
}

// Within is the narrowing of an audit query to what s may read.
func (s Set) Within() sinks.Within {
	var w sinks.Within
	if s.SourcePrefixes != nil {
		w.SourcePrefixes = slices.Clone(s.SourcePrefixes.Allow)
		if w.SourcePrefixes == nil {
			w.SourcePrefixes = []string{}
		}
	}
	if s.TypePrefixes != nil {
		w.TypePrefixes = slices.Clone(s.TypePrefixes.Allow)
		if w.TypePrefixes == nil {
			w.TypePrefixes = []string{}
		}
	}
	return w
}

// CheckTopic refuses a topic s does not allow, naming the rule.
func (s Set) CheckTopic(topic string) error {
	if s.Topics == nil || slices.Contains(s.Topics.Allow, topic) {
		return nil
	}
	return deny(refusal.TopicNotAllowed, "topic", topic, s.Topics, "the topics", "publish to an allowed topic (?topic=NAME)")
}

// CheckRoute refuses a route s does not allow, naming the rule.
func (s Set) CheckRoute(route string) error {
	if s.Routes == nil || slices.Contains(s.Routes.Allow, route) {
		return nil
	}
	return deny(refusal.RouteNotAllowed, "route", route, s.Routes, "the routes", "send through an allowed route (?route=NAME)")
}

// CheckEvent refuses an event whose source or type s does not allow,
// naming the rule.
func (s Set) CheckEvent(source, typ string) error {
	if r := s.SourcePrefixes; r != nil && !hasPrefix(source, r.Allow) {
		return deny(refusal.SourceNotAllowed, "source", source, r, "sources starting with", "send events whose source starts with an allowed prefix")
	}
	if r := s.TypePrefixes; r != nil && !hasPrefix(typ, r.Allow) {
		return deny(refusal.TypeNotAllowed, "type", typ, r, "types starting with", "send events whose type starts with an allowed prefix")
	}
	return nil
}

func hasPrefix(s string, list []string) bool {
	return slices.ContainsFunc(list, func(p string) bool { return strings.HasPrefix(s, p) })
}

// deny is the refusal of value for what by rule r.
func deny(reason, what, value string, r *Rule, allowed, fix string) error {
	return &refusal.Error{Reason: reason, Rule: fmt.Sprintf("%s %q is not allowed: %s allows only %s %s; %s, or ask for a token or policy that allows %q",
		what, clip(value), r.From, allowed, quoteList(r.Allow), fix, clip(value))}
}

// String lists the rules of s, for logs and messages.
func (s Set) String() string {
	if !s.Restricted() {
		return "unrestricted"
	}
	var parts []string
	for _, d := range []struct {
		name string
		r    *Rule
	}{{"topics", s.Topics}, {"routes", s.Routes}, {"source prefixes", s.SourcePrefixes}, {"type prefixes", s.TypePrefixes}} {
		if d.r != nil {
			parts = append(parts, d.name+" "+quoteList(d.r.Allow))
		}
	}
	return strings.Join(parts, "; ")
}

func quoteList(list []string) string {
	if len(list) == 0 {
		return "(none: the rules it combines allow nothing in common)"
	}
	// Values hold no spaces (CheckValue), so the quoted list splits on them.
	return strings.ReplaceAll(strings.Trim(fmt.Sprintf("%q", list), "[]"), `" "`, `", "`)
}

// clip shortens what a client sent before a message echoes it.
func clip(s string) string { return cliptext.Text(s, 100) }
