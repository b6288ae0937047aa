// Package clip shortens text a client sent before a message echoes it,
// the one way auditbus does so: an error names the input it refuses
// without repeating hostile input whole (a parameter, a header, a name
// in a token), and never cuts a character in two.
package clip

import "unicode/utf8"

// Ellipsis marks where Text left bytes out.
const Ellipsis = "..."

// Text returns s when it holds at most n bytes, and otherwise its first n
// bytes, cut back to the start of a character, followed by Ellipsis. A
// negative n counts as 0.
func Text(s string, n int) string {
	if len(s) <= max(n, 0) {
		return s
	}
	i := max(n, 0)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + Ellipsis
}
