package httpapi

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// pageWriter streams event versions and ledger entries as JSON onto a
// buffered writer, building each item in one reused scratch buffer. Write
// errors stick in the bufio.Writer and surface at Flush.
type pageWriter struct {
	w       *bufio.Writer
	scratch []byte
	// narrowed, when set, is written as the page's "narrowed" member.
	narrowed []byte
}

// page writes {"items":[...],"next":"..."} and a newline; next is left
// out when empty.
func (p *pageWriter) page(items []sinks.Item, next string) {
	p.open()
	for i := range items {
		p.item(i, &items[i])
	}
	p.close(next)
}

// open starts a page: {"items":[.
func (p *pageWriter) open() { _, _ = p.w.WriteString(`{"items":[`) }

// close ends a page after its items: ],"next":"..."} and a newline, next
// left out when empty.
func (p *pageWriter) close(next string) {
	_ = p.w.WriteByte(']')
	if next != "" {
		b := append(p.scratch[:0], `,"next":`...)
		b = appendString(b, next)
		_, _ = p.w.Write(b)
		p.scratch = b
	}
	if p.narrowed != nil {
		_, _ = p.w.WriteString(`,"narrowed":`)
		_, _ = p.w.Write(p.narrowed)
	}
	_, _ = p.w.WriteString("}\n")
}

// item writes the item at index i of the page (a comma before all but
// the first): {"event":...,"digest":...,"conflict":...,"trail":[...]}.
func (p *pageWriter) item(i int, it *sinks.Item) {
	if i > 0 {
		_ = p.w.WriteByte(',')
	}
	b := append(p.scratch[:0], `{"event":`...)
	e := jsonSafe(&it.Event)
	var ok bool
	if b, ok = appendEvent(b, e); !ok {
		// An event appendEvent leaves to the SDK: checkItems made sure
		// it has a context, the one thing WriteJson can fail on.
		_, _ = p.w.Write(b)
		_ = event.WriteJson(e, p.w)
		b = b[:0]
	}
	b = append(b, `,"digest":`...)
	b = appendDigest(b, it.Digest)
	b = append(b, `,"conflict":`...)
	b = strconv.AppendBool(b, it.Conflict)
	b = append(b, `,"trail":[`...)
	for i := range it.Trail {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntry(b, &it.Trail[i], false)
	}
	b = append(b, "]}"...)
	_, _ = p.w.Write(b)
	p.scratch = b
}

// ledgerPage writes {"log":...,"entries":[...],"next_after_seq":N} and a
// newline.
func (p *pageWriter) ledgerPage(log string, entries []sinks.Entry, next uint64) {
	b := append(p.scratch[:0], `{"log":`...)
	b = appendString(b, log)
	b = append(b, `,"entries":[`...)
	for i := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntry(b, &entries[i], true)
		if len(b) >= 16<<10 {
			_, _ = p.w.Write(b)
			b = b[:0]
		}
	}
	b = append(b, `],"next_after_seq":`...)
	b = strconv.AppendUint(b, next, 10)
	b = append(b, "}\n"...)
	_, _ = p.w.Write(b)
	p.scratch = b
}

// appendDigest appends d's String form as a JSON string.
func appendDigest(b []byte, d sinks.Digest) []byte {
	b = append(b, `"sha256:`...)
	b = hex.AppendEncode(b, d[:])
	return append(b, '"')
}

// appendEntry appends a ledger entry as a JSON object: log, seq, time and
// kind, the version's source, id and digest when version is set, and the
// other fields that are not empty.
func appendEntry(b []byte, en *sinks.Entry, version bool) []byte {
	b = append(b, `{"log":`...)
	b = appendString(b, en.Log)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, en.Seq, 10)
	b = append(b, `,"time":"`...)
	b = en.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":`...)
	b = appendString(b, en.Kind)
	if version {
		b = append(b, `,"source":`...)
		b = appendString(b, en.Source)
		b = append(b, `,"id":`...)
		b = appendString(b, en.ID)
		b = append(b, `,"digest":`...)
		b = appendDigest(b, en.Digest)
	}
	b = appendField(b, `,"transport":`, en.Transport)
	b = appendField(b, `,"topic":`, en.Topic)
	if en.Partition != 0 {
		b = append(b, `,"partition":`...)
		b = strconv.AppendInt(b, int64(en.Partition), 10)
	}
	if en.Offset != 0 {
		b = append(b, `,"offset":`...)
		b = strconv.AppendInt(b, en.Offset, 10)
	}
	b = appendField(b, `,"request":`, en.Request)
	b = appendField(b, `,"principal":`, en.Principal)
	b = appendField(b, `,"route":`, en.Route)
	b = appendField(b, `,"destination":`, en.Destination)
	if en.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(en.Attempts), 10)
	}
	b = appendField(b, `,"error":`, en.Error)
	b = appendField(b, `,"replay":`, en.Replay)
	b = appendField(b, `,"trace_id":`, en.TraceID)
	b = appendField(b, `,"span_id":`, en.SpanID)
	b = appendField(b, `,"signature":`, en.Signature)
	return append(b, '}')
}

// appendField appends name and s as a JSON string, unless s is empty.
func appendField(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, name...), s)
}

// appendEvent appends e in the JSON event format, byte for byte as the
// SDK's event.WriteJson writes it (which allocates as it goes), but
// replacing bytes that are not UTF-8 in attribute values with U+FFFD so
// the answer stays JSON. It leaves to the SDK (ok false, b unchanged) what
// it does not write itself: contexts other than 1.0, and extension values
// other than strings, booleans and integers, the types events read from
// the stores have.
func appendEvent(b []byte, e *event.Event) (_ []byte, ok bool) {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return b, false
	}
	var namesBuf [8]string
	names := namesBuf[:0]
	for k, v := range ec.Extensions {
		switch v.(type) {
		case string, bool, int32:
		default:
			return b, false
		}
		names = append(names, k)
	}
	slices.Sort(names)

	b = append(b, `{"specversion":"1.0","id":`...)
	b = appendString(b, ec.ID)
	b = append(b, `,"source":`...)
	b = appendString(b, ec.Source.String())
	b = append(b, `,"type":`...)
	b = appendString(b, ec.Type)
	if ec.Subject != nil {
		b = append(b, `,"subject":`...)
		b = appendString(b, *ec.Subject)
	}
	if ec.DataContentType != nil {
		b = append(b, `,"datacontenttype":`...)
		b = appendString(b, *ec.DataContentType)
	}
	if ec.DataSchema != nil {
		b = append(b, `,"dataschema":`...)
		b = appendString(b, ec.DataSchema.String())
	}
	if ec.Time != nil {
		b = append(b, `,"time":"`...)
		b = ec.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if d := e.DataEncoded; d != nil {
		switch writes, _ := sdkJSON(e.DataContentType()); {
		case e.DataBase64:
			b = append(b, `,"data_base64":"`...)
			b = base64.StdEncoding.AppendEncode(b, d)
			b = append(b, '"')
		case writes:
			b = append(b, `,"data":`...)
			b = append(b, d...)
		default:
			b = append(b, `,"data":`...)
			b = appendString(b, string(d))
		}
	}
	for _, k := range names {
		b = append(b, ',')
		b = appendString(b, k)
		b = append(b, ':')
		switch v := ec.Extensions[k].(type) {
		case string:
			b = appendString(b, v)
		case bool:
			b = strconv.AppendBool(b, v)
		case int32:
			b = strconv.AppendInt(b, int64(v), 10)
		}
	}
	return append(b, '}'), true
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
	if len(d) == 0 {
		c := *e
		c.DataEncoded = nil // the SDK would write "data": with no value
		return &c
	}
	ok := utf8.Valid(d)
	if ok {
		switch writes, reads := sdkJSON(e.DataContentType()); {
		case writes && !reads:
			// The SDK would write JSON that it reads back as a string
			// ("Application/JSON"): only base64 survives that.
			ok = false
		case writes:
			// A JSON reader hands back the value without the whitespace
			// around it, so such data would not come back exactly.
			ok = !isSpace(d[0]) && !isSpace(d[len(d)-1]) && validJSON(d)
		}
	}
	if ok {
		return e
	}
	c := *e
	c.DataBase64 = true
	return &c
}

// sdkJSON reports whether the SDK writes data of content type ct as JSON
// rather than as a string, and whether it reads it as JSON: its writer
// ignores case and parameters, its reader only parameters, and only when
// there are some.
func sdkJSON(ct string) (writes, reads bool) {
	mt := ct
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		mt = strings.TrimSpace(ct[:i])
	}
	return isSDKJSON(strings.ToLower(strings.TrimSpace(mt))), isSDKJSON(mt)
}

func isSDKJSON(mt string) bool {
	switch mt {
	case "", event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON:
		return true
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// appendString appends s as a JSON string, escaped as the SDK's JSON
// writer escapes it: '"', '\\' and control characters only. Bytes that are
// not UTF-8 become U+FFFD, which that writer would copy as they are.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				start = i + 1
			}
			i += size
			continue
		}
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
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
