package perms

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/auditbus/auditbus/pkg/refusal"
)

func TestIntersectOnlyNarrows(t *testing.T) {
	rule := func(vals ...string) *Rule { return &Rule{Allow: vals, From: "r"} }
	for _, c := range []struct {
		name string
		a, b []string
		want []string
	}{
		{"nested", []string{"/shop"}, []string{"/shop/cart"}, []string{"/shop/cart"}},
		{"nested, other side", []string{"/shop/cart"}, []string{"/shop"}, []string{"/shop/cart"}},
		{"disjoint", []string{"/shop"}, []string{"/billing"}, []string{}},
		{"several", []string{"/a", "/b"}, []string{"/a/x", "/b", "/c"}, []string{"/a/x", "/b"}},
	} {
		got := Set{SourcePrefixes: rule(c.a...)}.Intersect(Set{SourcePrefixes: rule(c.b...)})
		if !slices.Equal(got.SourcePrefixes.Allow, c.want) {
			t.Errorf("%s: %q ∩ %q = %q, want %q", c.name, c.a, c.b, got.SourcePrefixes.Allow, c.want)
		}
	}
	topics := Set{Topics: rule("a", "b")}.Intersect(Set{Topics: rule("b", "c")})
	if !slices.Equal(topics.Topics.Allow, []string{"b"}) {
		t.Errorf("topics a,b ∩ b,c = %q", topics.Topics.Allow)
	}
	none := Set{Topics: rule("a")}.Intersect(Set{Topics: rule("b")})
	if err := none.CheckTopic("a"); err == nil {
		t.Error("disjoint topic rules allow a")
	}
	if (Set{}).Intersect(Set{}).Restricted() {
		t.Error("two unrestricted sets make a restricted one")
	}
}

func TestChecksNameTheRule(t *testing.T) {
	s := Set{
		Topics:         &Rule{Allow: []string{"orders"}, From: "T"},
		Routes:         &Rule{Allow: []string{"shop-in"}, From: "R"},
		SourcePrefixes: &Rule{Allow: []string{"/shop"}, From: "S"},
		TypePrefixes:   &Rule{Allow: []string{"com.example.order."}, From: "Y"},
	}
	for _, c := range []struct {
		err    error
		reason string
	}{
		{s.CheckTopic("audit"), refusal.TopicNotAllowed},
		{s.CheckRoute("other"), refusal.RouteNotAllowed},
		{s.CheckEvent("/billing", "com.example.order.x"), refusal.SourceNotAllowed},
		{s.CheckEvent("/shop", "com.example.payment"), refusal.TypeNotAllowed},
	} {
		re, ok := refusal.As(c.err)
		if !ok || re.Reason != c.reason {
			t.Errorf("%v: want a refusal for %s", c.err, c.reason)
		}
	}
	if err := errors.Join(s.CheckTopic("orders"), s.CheckRoute("shop-in"), s.CheckEvent("/shop/x", "com.example.order.y")); err != nil {
		t.Errorf("allowed: %v", err)
	}
}

func TestPolicyErrorsNameLines(t *testing.T) {
	for _, c := range []struct{ text, says string }{
		{"", "line 1"},
		{"routes: []\n", "line 1: routes: unknown field"},
		{"principals:\n  a: ~\n", `line 2: principal "a": no permissions`},
		{"principals:\n  a: {}\n", `line 2: principal "a": no permissions`},
		{"principals:\n  a:\n    topics: orders\n", "line 3"},
		{"principals:\n  a:\n    topics: [[x]]\n", "topics[0]: must be a single value"},
		{"principals:\n  a:\n    topics: [x]\n    topics: [y]\n", "set twice (lines 3 and 4)"},
		{"principals:\n  a:\n    type_prefixes: [\"\"]\n", "is empty"},
		{"principals:\n  a:\n    source_prefixes: [/shop/cart, /shop]\n", `"/shop" overlaps "/shop/cart"`},
		{"principals: {}\n", "at least one subject"},
		{"a: 1\n---\nb: 2\n", "more than one YAML document"},
	} {
		_, err := ParsePolicy("p.yaml", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), "p.yaml") || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: %v, want an error naming p.yaml and %q", c.text, err, c.says)
		}
	}
	p, err := ParsePolicy("p.yaml", []byte("principals:\n  a:\n    routes: [r]\n"))
	if err != nil || p.Len() != 1 {
		t.Fatalf("a good policy: %v", err)
	}
	if s, ok := p.For("a"); !ok || s.Routes == nil || !strings.Contains(s.Routes.From, "p.yaml line 3") {
		t.Errorf("principal a: %+v %v", s, ok)
	}
	if _, ok := p.For("b"); ok {
		t.Error("principal b is in the policy")
	}
}
