package auth

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/perms"
)

// The kinds of first-party caveat a Macaroon may carry, each written
// "KIND = VALUE". Every kind but expires takes a space-separated list,
// whose values are alternatives; several caveats of one kind intersect, so
// that adding a caveat can only narrow a token.
const (
	CaveatScope        = "scope"         // scopes granted: scope = events:write audit:read
	CaveatTopic        = "topic"         // topics it may publish to: topic = orders
	CaveatRoute        = "route"         // HTTP-fed routes it may publish through: route = shop-in
	CaveatSourcePrefix = "source-prefix" // sources it may claim and read: source-prefix = /shop
	CaveatTypePrefix   = "type-prefix"   // types it may send and read: type-prefix = com.example.order.
	CaveatExpires      = "expires"       // RFC 3339 time it stops being valid: expires = 2027-01-01T00:00:00Z
)

// CaveatKinds lists the caveat kinds this server understands.
var CaveatKinds = []string{CaveatScope, CaveatTopic, CaveatRoute, CaveatSourcePrefix, CaveatTypePrefix, CaveatExpires}

// MaxCaveatBytes bounds one caveat.
const MaxCaveatBytes = 4 << 10

// Caveat is one parsed first-party caveat.
type Caveat struct {
	// Kind is one of CaveatKinds.
	Kind string
	// Values are the alternatives of the list (not for expires).
	Values []string
	// Expires is the time of an expires caveat.
	Expires time.Time
}

// String is the caveat's canonical text, "KIND = VALUE ...".
func (c Caveat) String() string {
	if c.Kind == CaveatExpires {
		return c.Kind + " = " + c.Expires.UTC().Format(time.RFC3339)
	}
	return c.Kind + " = " + strings.Join(c.Values, " ")
}

// ParseCaveat reads one caveat, "KIND = VALUE", with any spaces around the
// '='. An unknown kind, an empty or malformed value, a value repeated in
// the list, or a prefix another of the list covers is an error that
// names the caveat and says what is accepted.
func ParseCaveat(s string) (Caveat, error) {
	if len(s) > MaxCaveatBytes {
		return Caveat{}, fmt.Errorf("caveat %q: %d bytes; at most %d", clip(s), len(s), MaxCaveatBytes)
	}
	k, v, ok := strings.Cut(s, "=")
	kind, val := strings.TrimSpace(k), strings.TrimSpace(v)
	if !ok || kind == "" {
		return Caveat{}, fmt.Errorf("caveat %q: not of the form KIND = VALUE; the kinds are %s", clip(s), strings.Join(CaveatKinds, ", "))
	}
	if !slices.Contains(CaveatKinds, kind) {
		return Caveat{}, fmt.Errorf("caveat %q: unknown kind %q; this server understands %s, and refuses a token with any other", clip(s), clip(kind), strings.Join(CaveatKinds, ", "))
	}
	c := Caveat{Kind: kind}
	if kind == CaveatExpires {
		t, err := time.Parse(time.RFC3339, val)
		if err != nil {
			return Caveat{}, fmt.Errorf("caveat %q: %q is not an RFC 3339 time such as 2027-01-01T00:00:00Z", clip(s), clip(val))
		}
		c.Expires = t
		return c, nil
	}
	c.Values = strings.Fields(val)
	if len(c.Values) == 0 {
		return Caveat{}, fmt.Errorf("caveat %q: no value; write %s = VALUE [VALUE...]", clip(s), kind)
	}
	for i, x := range c.Values {
		if err := perms.CheckValue(x); err != nil {
			return Caveat{}, fmt.Errorf("caveat %q: value %q %v", clip(s), clip(x), err)
		}
		if slices.Contains(c.Values[:i], x) {
			return Caveat{}, fmt.Errorf("caveat %q: value %q is given twice; give it once", clip(s), clip(x))
		}
		if kind != CaveatSourcePrefix && kind != CaveatTypePrefix {
			continue
		}
		for _, y := range c.Values[:i] {
			if strings.HasPrefix(x, y) || strings.HasPrefix(y, x) {
				return Caveat{}, fmt.Errorf("caveat %q: prefixes %q and %q overlap; keep the shorter alone", clip(s), clip(y), clip(x))
			}
		}
	}
	return c, nil
}

// grant is what a Macaroon's caveats allow, built caveat by caveat.
type grant struct {
	scopes    []string // nil until a scope caveat
	scoped    bool
	perms     perms.Set
	expires   time.Time
	expiresBy string // the caveat that set expires
}

// add narrows g by c, whose text was raw.
func (g *grant) add(c Caveat, raw string) {
	from := fmt.Sprintf("the token's caveat %q", clip(raw))
	rule := &perms.Rule{Allow: c.Values, From: from}
	switch c.Kind {
	case CaveatScope:
		if !g.scoped {
			g.scopes, g.scoped = slices.Clone(c.Values), true
		} else {
			g.scopes = slices.DeleteFunc(g.scopes, func(s string) bool { return !slices.Contains(c.Values, s) })
		}
	case CaveatTopic:
		g.perms = g.perms.Intersect(perms.Set{Topics: rule})
	case CaveatRoute:
		g.perms = g.perms.Intersect(perms.Set{Routes: rule})
	case CaveatSourcePrefix:
		g.perms = g.perms.Intersect(perms.Set{SourcePrefixes: rule})
	case CaveatTypePrefix:
		g.perms = g.perms.Intersect(perms.Set{TypePrefixes: rule})
	case CaveatExpires:
		if g.expires.IsZero() || c.Expires.Before(g.expires) {
			g.expires, g.expiresBy = c.Expires, raw
		}
	}
}
