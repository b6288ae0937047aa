package sinks_test

import (
	"testing"

	"github.com/auditbus/auditbus/sinks"
)

func TestWithinAllowsAndCovers(t *testing.T) {
	shop := sinks.Within{SourcePrefixes: []string{"/shop"}}
	for _, c := range []struct {
		w, o   sinks.Within
		covers bool
	}{
		{sinks.Within{}, shop, true},
		{shop, sinks.Within{}, false},
		{shop, sinks.Within{SourcePrefixes: []string{"/shop/cart"}}, true},
		{shop, sinks.Within{SourcePrefixes: []string{"/shop/cart", "/billing"}}, false},
		{shop, sinks.Within{SourcePrefixes: []string{}}, true},
		{shop, sinks.Within{SourcePrefixes: []string{"/shop"}, TypePrefixes: []string{"com."}}, true},
		{sinks.Within{TypePrefixes: []string{"com.a."}}, shop, false},
	} {
		if got := c.w.Covers(c.o); got != c.covers {
			t.Errorf("%v covers %v: %v, want %v", c.w, c.o, got, c.covers)
		}
	}
	if !shop.Allows("/shop/x", "any") || shop.Allows("/billing", "any") || (sinks.Within{SourcePrefixes: []string{}}).Allows("/shop", "t") {
		t.Error("Allows")
	}
}
