package httpapi

// validJSON reports whether d is one JSON value (RFC 8259), whitespace
// around it allowed, as encoding/json.Valid does; like it, it leaves UTF-8
// to the caller. It exists because encoding/json.Valid took most of the
// time of writing a query page whose events carry JSON data; this scanner
// does the same check several times faster and allocates nothing for
// nesting up to 64 levels.
func validJSON(d []byte) bool {
	var stackBuf [64]byte
	stack := stackBuf[:0] // '{' or '[' of each open container
	i := skipSpace(d, 0)
	for {
		// A value starts at i.
		if i >= len(d) {
			return false
		}
		ok := true
		switch c := d[i]; {
		case c == '{' || c == '[':
			end := byte('}')
			if c == '[' {
				end = ']'
			}
			i = skipSpace(d, i+1)
			if i < len(d) && d[i] == end {
				i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if i, ok = member(d, i); !ok {
					return false
				}
			}
			continue
		case c == '"':
			i, ok = scanString(d, i)
		case c == '-' || '0' <= c && c <= '9':
			i, ok = scanNumber(d, i)
		case c == 't':
			i, ok = literal(d, i, "true")
		case c == 'f':
			i, ok = literal(d, i, "false")
		case c == 'n':
			i, ok = literal(d, i, "null")
		default:
			return false
		}
		if !ok {
			return false
		}
		// A value ended before i: close containers until one continues.
		for {
			i = skipSpace(d, i)
			if len(stack) == 0 {
				return i == len(d)
			}
			if i >= len(d) {
				return false
			}
			top := stack[len(stack)-1]
			if d[i] == ',' {
				i = skipSpace(d, i+1)
				if top == '{' {
					if i, ok = member(d, i); !ok {
						return false
					}
				}
				break
			}
			if top == '{' && d[i] == '}' || top == '[' && d[i] == ']' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			return false
		}
	}
}

// member reads `"name" :` at i and returns where its value starts.
func member(d []byte, i int) (int, bool) {
	if i >= len(d) || d[i] != '"' {
		return i, false
	}
	i, ok := scanString(d, i)
	if !ok {
		return i, false
	}
	i = skipSpace(d, i)
	if i >= len(d) || d[i] != ':' {
		return i, false
	}
	return skipSpace(d, i+1), true
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the string starting with the quote at i.
func scanString(d []byte, i int) (int, bool) {
	for i++; i < len(d); {
		switch c := d[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			if i+1 >= len(d) {
				return i, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		default:
			i++
		}
	}
	return i, false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// scanNumber reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at i.
func scanNumber(d []byte, i int) (int, bool) {
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		i = digits(d, i)
	default:
		return i, false
	}
	if i < len(d) && d[i] == '.' {
		j := digits(d, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

func digits(d []byte, i int) int {
	for i < len(d) && '0' <= d[i] && d[i] <= '9' {
		i++
	}
	return i
}

func literal(d []byte, i int, lit string) (int, bool) {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}
