package cehttp

import (
	"errors"
	"unicode/utf8"
)

// The HTTP binding (section 3.1.3.2) carries attribute values in headers
// percent-encoded: space, double-quote, percent and every byte outside the
// printable ASCII range U+0021-U+007E become %XY over the value's UTF-8
// bytes. Control characters are encoded too, as the binding recommends.

const upperHex = "0123456789ABCDEF"

// mustEscape reports whether c is encoded in a header value.
func mustEscape(c byte) bool { return c <= ' ' || c == '"' || c == '%' || c >= 0x7f }

// encodeHeaderValue percent-encodes s for a ce- header. It allocates only
// when something needs encoding.
func encodeHeaderValue(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if mustEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if mustEscape(c) {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

var (
	errQuoted   = errors.New("starts with a double quote but is not one well-formed quoted-string (RFC 7230, section 3.2.6)")
	errUTF8     = errors.New("is not valid UTF-8")
	errHdrUTF8  = errors.New("is not valid UTF-8 once percent-decoded; percent-encode the value's UTF-8 bytes (the HTTP binding, section 3.1.3.2)")
	errControl  = errors.New("contains a control character (U+0000-U+001F or U+007F-U+009F), which CloudEvents strings must not contain")
	errNonChars = errors.New("contains a Unicode noncharacter, which CloudEvents strings must not contain")
)

// decodeHeaderValue undoes the binding's encoding of a ce- header value:
// an enclosing quoted-string is unescaped, then one round of
// percent-decoding is done. A '%' not followed by two hex digits is kept as
// it is, since senders that do not encode (the CloudEvents Go SDK among
// them) send such values. The result must be a valid CloudEvents string.
// It allocates only when the value is quoted or encoded.
func decodeHeaderValue(v string) (string, error) {
	if len(v) > 0 && v[0] == '"' {
		u, ok := unquote(v)
		if !ok {
			return "", errQuoted
		}
		v = u
	}
	if i := indexEscape(v); i >= 0 {
		v = percentDecode(v, i)
	}
	if err := checkString(v); err != nil {
		if err == errUTF8 {
			err = errHdrUTF8
		}
		return "", err
	}
	return v, nil
}

// unquote reads v as one RFC 7230 quoted-string, processing backslash
// escapes, and reports whether v was exactly that.
func unquote(v string) (string, bool) {
	b := make([]byte, 0, len(v))
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			if i+1 >= len(v) {
				return "", false
			}
			i++
			b = append(b, v[i])
		case '"':
			return string(b), i == len(v)-1
		default:
			b = append(b, c)
		}
	}
	return "", false
}

// indexEscape returns the index of the first valid %XY sequence in v, or -1.
func indexEscape(v string) int {
	for i := 0; i+2 < len(v); i++ {
		if v[i] == '%' && isHex(v[i+1]) && isHex(v[i+2]) {
			return i
		}
	}
	return -1
}

// percentDecode decodes every %XY sequence of v, the first at index i.
func percentDecode(v string, i int) string {
	b := make([]byte, 0, len(v))
	b = append(b, v[:i]...)
	for ; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
			b = append(b, unhex(v[i+1])<<4|unhex(v[i+2]))
			i += 2
			continue
		}
		b = append(b, v[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// checkString applies the CloudEvents String rules: valid UTF-8 (which
// excludes surrogates), no control characters, no noncharacters.
func checkString(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return errControl
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return errUTF8
		case r >= 0x80 && r <= 0x9f:
			return errControl
		case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
			return errNonChars
		}
		i += size
	}
	return nil
}
