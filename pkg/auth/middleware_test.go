package auth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestChallengeQuoting(t *testing.T) {
	e := newError(ErrBadSignature, `issuer "a\b" sent «this»`+"\n"+strings.Repeat("x", 3), nil)
	got := challenge(e, ScopeAuditRead)
	want := `Bearer realm="auditbus", error="invalid_token", error_description="issuer 'ab' sent thisxxx", scope="audit:read"`
	if got != want {
		t.Errorf("challenge\n got %s\nwant %s", got, want)
	}
	if c := clip(strings.Repeat("é", 40)); len(c) > 70 || !strings.HasSuffix(c, "...") || !utf8.ValidString(c) {
		t.Errorf("clip = %q", c)
	}
}
