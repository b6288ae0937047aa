package httpapi

import (
	"bufio"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// pageWriter streams audit records as JSON items onto a buffered writer,
// reusing one scratch buffer for the audit part. Write errors stick in the
// bufio.Writer and surface at Flush.
type pageWriter struct {
	w       *bufio.Writer
	scratch []byte
}

// page writes {"items":[...],"next":"..."} and a newline.
func (p *pageWriter) page(pg sinks.Page) {
	_, _ = p.w.WriteString(`{"items":[`)
	for i := range pg.Records {
		if i > 0 {
			_ = p.w.WriteByte(',')
		}
		p.item(&pg.Records[i])
	}
	_ = p.w.WriteByte(']')
	if pg.Next != "" {
		b := append(p.scratch[:0], `,"next":`...)
		b = appendString(b, pg.Next)
		_, _ = p.w.Write(b)
		p.scratch = b
	}
	_, _ = p.w.WriteString("}\n")
}

// item writes {"event":...,"audit":...}.
func (p *pageWriter) item(r *sinks.Record) {
	_, _ = p.w.WriteString(`{"event":`)
	// checkRecords made sure the event has a context, the one thing
	// WriteJson can fail on; jsonSafe made sure its data writes as JSON.
	_ = event.WriteJson(jsonSafe(&r.Event), p.w)
	b := appendAudit(p.scratch[:0], r)
	b = append(b, '}')
	_, _ = p.w.Write(b)
	p.scratch = b
}

// appendAudit appends ,"audit":{...}.
func appendAudit(b []byte, r *sinks.Record) []byte {
	b = append(b, `,"audit":{"transport":`...)
	b = appendString(b, r.Transport)
	b = append(b, `,"topic":`...)
	b = appendString(b, r.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, `,"route":`...)
	b = appendString(b, r.Route)
	b = append(b, `,"outcome":`...)
	b = appendString(b, r.Outcome)
	if r.Replay != "" {
		b = append(b, `,"replay":`...)
		b = appendString(b, r.Replay)
	}
	b = append(b, `,"received":"`...)
	b = r.Received.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// jsonSafe returns e, or a shallow copy whose data the JSON event format
// carries byte for byte. The SDK writes data of a JSON content type as it
// is and other data as a string, unless DataBase64 is set; data that is not
// valid JSON (or UTF-8 text) there would make the answer invalid or lose
// bytes, so it goes to data_base64 instead.
func jsonSafe(e *event.Event) *event.Event {
	d := e.DataEncoded
	if d == nil || e.DataBase64 {
		return e
	}
	c := *e
	if len(d) == 0 {
		c.DataEncoded = nil // the SDK would write "data": with no value
		return &c
	}
	ok := utf8.Valid(d)
	if ok && sdkJSON(e.DataContentType()) {
		// A JSON reader hands back the value without the whitespace
		// around it, so such data would not come back exactly.
		ok = !isSpace(d[0]) && !isSpace(d[len(d)-1]) && json.Valid(d)
	}
	if ok {
		return e
	}
	c.DataBase64 = true
	return &c
}

// sdkJSON reports whether the SDK writes data of content type ct as JSON
// rather than as a string (its rule: these media types, and none).
func sdkJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	switch strings.ToLower(strings.TrimSpace(ct)) {
	case "", event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON:
		return true
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// and U+2028 and U+2029 are escaped, as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
