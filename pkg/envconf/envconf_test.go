package envconf

import (
	"strings"
	"testing"
	"time"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestReader(t *testing.T) {
	r := WithLookup("X_", lookup(map[string]string{
		"X_LIST": " a, ,b ", "X_BOOL": "yes", "X_INT": "7", "X_DUR": "250ms", "X_ENUM": "GZIP",
		"X_BADINT": "-3", "X_BADBOOL": "maybe", "X_BADDUR": "soon", "X_BADENUM": "brotli",
	}))
	if got := r.List("LIST", nil); strings.Join(got, "|") != "a|b" {
		t.Errorf("List = %q", got)
	}
	if !r.Bool("BOOL", false) || r.Int("INT", 0, 1) != 7 || r.Duration("DUR", 0) != 250*time.Millisecond ||
		r.Enum("ENUM", "none", "none", "gzip") != "gzip" || r.String("UNSET", "def") != "def" {
		t.Error("good values misread")
	}
	if r.Err() != nil {
		t.Fatalf("unexpected: %v", r.Err())
	}
	r.Int("BADINT", 1, 0)
	r.Bool("BADBOOL", false)
	r.Duration("BADDUR", 0)
	r.Enum("BADENUM", "none", "none", "gzip")
	r.Required("MISSING", "name the brokers")
	r.TLS()
	err := r.Err()
	for _, want := range []string{
		`X_BADINT="-3": want a whole number >= 0`,
		`X_BADBOOL="maybe": accepted values: true, false`,
		`X_BADDUR="soon"`,
		`X_BADENUM="brotli": accepted values: none, gzip`,
		"X_MISSING is not set: name the brokers",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

func TestTLS(t *testing.T) {
	if cfg := WithLookup("X_", lookup(nil)).TLS(); cfg != nil {
		t.Fatal("TLS on with nothing set")
	}
	r := WithLookup("X_", lookup(map[string]string{"X_TLS_CA": "/nonexistent/ca.pem", "X_TLS_CERT": "/c.pem"}))
	if r.TLS() == nil {
		t.Fatal("a CA file turns TLS on")
	}
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "X_TLS_CA=\"/nonexistent/ca.pem\": cannot read the CA file") ||
		!strings.Contains(err.Error(), "X_TLS_CERT and X_TLS_KEY must be set together") {
		t.Fatalf("errors: %v", err)
	}
}
