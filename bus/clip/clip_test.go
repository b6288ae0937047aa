package clip_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/auditbus/auditbus/bus/clip"
)

func TestText(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc..."},
		{"abcd", 0, "..."},
		{"abcd", -1, "..."},
		{"héllo", 2, "h..."}, // é is two bytes: not cut in two
		{"héllo", 3, "hé..."},
		{"日本語", 4, "日..."},
	} {
		if got := clip.Text(tc.s, tc.n); got != tc.want {
			t.Errorf("Text(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func FuzzText(f *testing.F) {
	f.Add("héllo wörld", 4)
	f.Add(strings.Repeat("日", 50), 100)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := clip.Text(s, n)
		if len(got) > max(n, 0)+len(clip.Ellipsis) {
			t.Fatalf("Text(%q, %d) = %q: %d bytes", s, n, got, len(got))
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Text(%q, %d) = %q: cut a character", s, n, got)
		}
		if !strings.HasPrefix(s, strings.TrimSuffix(got, clip.Ellipsis)) {
			t.Fatalf("Text(%q, %d) = %q: not a prefix", s, n, got)
		}
	})
}
