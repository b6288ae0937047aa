package router

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"gopkg.in/yaml.v3"
)

// Filter selects events with the filter dialects of the CloudEvents
// Subscriptions API: exact, prefix and suffix compare attribute values
// (case-sensitive; every named attribute must match), and all, any and not
// combine expressions. An attribute the event does not carry never matches
// exact, prefix or suffix, so "not" of such an expression matches.
//
// Attributes are compared in their CloudEvents string form: time as RFC 3339
// in UTC with as many fractional digits as it has, URIs as written,
// extensions through the canonical string of their type (integers in
// decimal, booleans as true or false, binary in base64).
//
// The zero Filter matches every event. A Filter is immutable once compiled
// and safe for concurrent use.
type Filter struct {
	root *expr
}

type dialect uint8

const (
	dialectExact dialect = iota
	dialectPrefix
	dialectSuffix
	dialectAll
	dialectAny
	dialectNot
)

var dialectNames = [...]string{"exact", "prefix", "suffix", "all", "any", "not"}

func (d dialect) String() string { return dialectNames[d] }

// expr is one compiled filter expression: conds for exact, prefix and
// suffix, kids for all, any and not (exactly one kid).
type expr struct {
	dialect dialect
	conds   []cond
	kids    []*expr
}

type attr uint8

const (
	attrExtension attr = iota
	attrID
	attrSource
	attrSpecVersion
	attrType
	attrDataContentType
	attrDataSchema
	attrSubject
	attrTime
)

var contextAttrs = map[string]attr{
	"id": attrID, "source": attrSource, "specversion": attrSpecVersion, "type": attrType,
	"datacontenttype": attrDataContentType, "dataschema": attrDataSchema,
	"subject": attrSubject, "time": attrTime,
}

// cond compares one attribute with one value.
type cond struct {
	attr  attr
	name  string
	value string
}

// Match reports whether e passes the filter. A nil event, or one without a
// context, matches only the zero Filter.
func (f Filter) Match(e *event.Event) bool {
	if f.root == nil {
		return true
	}
	var v view
	if e == nil || !v.load(e.Context) {
		return false
	}
	return f.root.match(&v)
}

// IsZero reports whether f is the empty filter, which matches every event.
func (f Filter) IsZero() bool { return f.root == nil }

// String renders f as JSON in the Subscriptions API form, for logs; the
// zero Filter is {}.
func (f Filter) String() string {
	if f.root == nil {
		return "{}"
	}
	b, err := json.Marshal(f.root.tree())
	if err != nil {
		return fmt.Sprintf("<filter: %v>", err)
	}
	return string(b)
}

func (x *expr) tree() map[string]any {
	switch x.dialect {
	case dialectAll, dialectAny:
		kids := make([]any, len(x.kids))
		for i, k := range x.kids {
			kids[i] = k.tree()
		}
		return map[string]any{x.dialect.String(): kids}
	case dialectNot:
		return map[string]any{"not": x.kids[0].tree()}
	}
	m := make(map[string]string, len(x.conds))
	for _, c := range x.conds {
		m[c.name] = c.value
	}
	return map[string]any{x.dialect.String(): m}
}

func (x *expr) match(v *view) bool {
	switch x.dialect {
	case dialectAll:
		for _, k := range x.kids {
			if !k.match(v) {
				return false
			}
		}
		return true
	case dialectAny:
		for _, k := range x.kids {
			if k.match(v) {
				return true
			}
		}
		return false
	case dialectNot:
		return !x.kids[0].match(v)
	}
	for i := range x.conds {
		if !x.conds[i].match(x.dialect, v) {
			return false
		}
	}
	return true
}

func (c *cond) match(d dialect, v *view) bool {
	// Values that are not stored as strings are formatted here; the
	// buffer stays on the stack unless a value outgrows it.
	var buf [128]byte
	s, b, found := v.lookup(c, buf[:0])
	switch {
	case !found:
		return false
	case b == nil:
		return compare(d, s, c.value)
	}
	switch d {
	case dialectExact:
		return string(b) == c.value
	case dialectPrefix:
		return len(b) >= len(c.value) && string(b[:len(c.value)]) == c.value
	default:
		return len(b) >= len(c.value) && string(b[len(b)-len(c.value):]) == c.value
	}
}

func compare(d dialect, s, want string) bool {
	switch d {
	case dialectExact:
		return s == want
	case dialectPrefix:
		return strings.HasPrefix(s, want)
	default:
		return strings.HasSuffix(s, want)
	}
}

// view holds the attributes of one event, read from the SDK's context
// structs directly: their getters format URIs and copy the extension map,
// which allocates on every call.
type view struct {
	id, typ, specVersion string
	source, schema       *url.URL
	contentType, subject *string
	time                 *types.Timestamp
	ext                  map[string]any
}

func (v *view) load(ctx event.EventContext) bool {
	switch ec := ctx.(type) {
	case nil:
		return false
	case *event.EventContextV03:
		*v = view{id: ec.ID, typ: ec.Type, specVersion: event.CloudEventsVersionV03,
			source: &ec.Source.URL, contentType: ec.DataContentType, subject: ec.Subject,
			time: ec.Time, ext: ec.Extensions}
		if ec.SchemaURL != nil {
			v.schema = &ec.SchemaURL.URL
		}
		return true
	case *event.EventContextV1:
		v.loadV1(ec)
		return true
	default:
		v.loadV1(ctx.AsV1())
		return true
	}
}

func (v *view) loadV1(ec *event.EventContextV1) {
	*v = view{id: ec.ID, typ: ec.Type, specVersion: event.CloudEventsVersionV1,
		source: &ec.Source.URL, contentType: ec.DataContentType, subject: ec.Subject,
		time: ec.Time, ext: ec.Extensions}
	if ec.DataSchema != nil {
		v.schema = &ec.DataSchema.URL
	}
}

// lookup returns the string form of c's attribute: in s when the event
// stores it as a string, otherwise appended to buf and returned in b.
// found is false when the event does not carry the attribute.
func (v *view) lookup(c *cond, buf []byte) (s string, b []byte, found bool) {
	switch c.attr {
	case attrID:
		return v.id, nil, v.id != ""
	case attrType:
		return v.typ, nil, v.typ != ""
	case attrSpecVersion:
		return v.specVersion, nil, true
	case attrSubject:
		return deref(v.subject)
	case attrDataContentType:
		return deref(v.contentType)
	case attrSource:
		return urlForm(v.source, buf)
	case attrDataSchema:
		return urlForm(v.schema, buf)
	case attrTime:
		if v.time == nil || v.time.IsZero() {
			return "", nil, false
		}
		return "", appendTime(buf, v.time.Time), true
	}
	x, ok := v.ext[c.name]
	if !ok {
		return "", nil, false
	}
	switch x := x.(type) {
	case string:
		return x, nil, true
	case bool:
		return strconv.FormatBool(x), nil, true
	case int32:
		return "", strconv.AppendInt(buf, int64(x), 10), true
	case []byte:
		return "", base64.StdEncoding.AppendEncode(buf, x), true
	case types.URI:
		return "", appendURL(buf, &x.URL), true
	case types.URIRef:
		return "", appendURL(buf, &x.URL), true
	case types.Timestamp:
		return "", appendTime(buf, x.Time), true
	case nil:
		return "", nil, false
	}
	// Extensions set without SetExtension can hold any type; format them
	// the way the SDK does, or treat them as absent.
	s, err := types.Format(x)
	return s, nil, err == nil
}

func deref(p *string) (string, []byte, bool) {
	if p == nil {
		return "", nil, false
	}
	return *p, nil, true
}

func urlForm(u *url.URL, buf []byte) (string, []byte, bool) {
	if u == nil {
		return "", nil, false
	}
	b := appendURL(buf, u)
	return "", b, len(b) > 0
}

// appendTime appends t as the SDK formats a CloudEvents timestamp.
func appendTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, time.RFC3339Nano)
}

// appendURL appends u.String() without allocating for the URIs events
// carry; unusual ones (user info, hosts that need escaping, OmitHost) go
// through u.String().
func appendURL(b []byte, u *url.URL) []byte {
	if u.User != nil || u.OmitHost || !plainHost(u.Host) {
		return append(b, u.String()...)
	}
	start := len(b)
	if u.Scheme != "" {
		b = append(b, u.Scheme...)
		b = append(b, ':')
	}
	if u.Opaque != "" {
		b = append(b, u.Opaque...)
	} else {
		if u.Scheme != "" || u.Host != "" {
			if u.Host != "" || u.Path != "" {
				b = append(b, "//"...)
			}
			b = append(b, u.Host...)
		}
		path := u.EscapedPath()
		if path != "" && path[0] != '/' && u.Host != "" {
			b = append(b, '/')
		}
		if len(b) == start {
			// A first segment with a colon would read as a scheme.
			if segment, _, _ := strings.Cut(path, "/"); strings.Contains(segment, ":") {
				b = append(b, "./"...)
			}
		}
		b = append(b, path...)
	}
	if u.ForceQuery || u.RawQuery != "" {
		b = append(b, '?')
		b = append(b, u.RawQuery...)
	}
	if u.Fragment != "" {
		b = append(b, '#')
		b = append(b, u.EscapedFragment()...)
	}
	return b
}

// plainHost reports whether url.URL.String writes h unchanged.
func plainHost(h string) bool {
	return only(h, func(c byte) bool {
		return alnum(c) || strings.IndexByte(".-_~:[]", c) >= 0
	})
}

// only reports whether every byte of s passes ok.
func only(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

// ParseFilter compiles a filter written in YAML or JSON: one expression
// such as {"prefix": {"type": "com.example."}}, or a list of expressions
// that must all match (the Subscriptions API "filters" array). Empty input,
// null, {} and [] give the zero Filter. Errors are *ConfigError values
// (joined when there are several) whose Field starts with "filter".
func ParseFilter(data []byte) (Filter, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Filter{}, fmt.Errorf("router: parse filter: %w", err)
	}
	p := &parser{index: -1}
	var n *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		n = doc.Content[0]
	}
	f := p.filter(n, "filter")
	if err := p.err(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// filter compiles the top of a filter: absent, null or empty means match
// everything, a list means all of its expressions.
func (p *parser) filter(n *yaml.Node, path string) Filter {
	n = resolve(n)
	if n == nil || n.Tag == "!!null" || len(n.Content) == 0 && n.Kind != yaml.ScalarNode {
		return Filter{}
	}
	if n.Kind == yaml.SequenceNode {
		x := p.list(n, path, dialectAll)
		if x != nil && len(x.kids) == 1 {
			x = x.kids[0]
		}
		return Filter{root: x}
	}
	return Filter{root: p.expr(n, path)}
}

const dialectList = "exact, prefix, suffix, all, any, not"

// expr compiles one filter expression: a mapping with one dialect.
func (p *parser) expr(n *yaml.Node, path string) *expr {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		p.errorf(n, path, "must be a filter expression such as {prefix: {type: com.example.}}")
		return nil
	}
	switch len(n.Content) {
	case 0:
		p.errorf(n, path, "empty filter expression; name one dialect (%s)", dialectList)
		return nil
	case 2:
	default:
		p.errorf(n, path, "one dialect per filter expression, found %q and %q; combine them with all",
			n.Content[0].Value, n.Content[2].Value)
		return nil
	}
	key, val := n.Content[0], resolve(n.Content[1])
	sub := path + "." + key.Value
	switch key.Value {
	case "exact":
		return p.conds(val, sub, dialectExact)
	case "prefix":
		return p.conds(val, sub, dialectPrefix)
	case "suffix":
		return p.conds(val, sub, dialectSuffix)
	case "all":
		return p.list(val, sub, dialectAll)
	case "any":
		return p.list(val, sub, dialectAny)
	case "not":
		kid := p.expr(val, sub)
		if kid == nil {
			return nil
		}
		return &expr{dialect: dialectNot, kids: []*expr{kid}}
	case "sql", "cesql":
		p.errorf(key, path, "the %s dialect is not supported (accepted: %s)", key.Value, dialectList)
	default:
		p.errorf(key, path, "unknown dialect %q (accepted: %s)", key.Value, dialectList)
	}
	return nil
}

// filled reports whether n is a node of kind with content, and reports
// the error wrong or empty when it is not.
func (p *parser) filled(n *yaml.Node, kind yaml.Kind, path, wrong, empty string) bool {
	switch {
	case n == nil || n.Kind != kind:
		p.errorf(n, path, "%s", wrong)
	case len(n.Content) == 0:
		p.errorf(n, path, "%s", empty)
	default:
		return true
	}
	return false
}

func (p *parser) list(n *yaml.Node, path string, d dialect) *expr {
	if !p.filled(n, yaml.SequenceNode, path, "must be a list of filter expressions", "needs at least one filter expression") {
		return nil
	}
	x := &expr{dialect: d}
	for i, k := range n.Content {
		if kid := p.expr(k, fmt.Sprintf("%s[%d]", path, i)); kid != nil {
			x.kids = append(x.kids, kid)
		}
	}
	if len(x.kids) != len(n.Content) {
		return nil
	}
	return x
}

func (p *parser) conds(n *yaml.Node, path string, d dialect) *expr {
	if !p.filled(n, yaml.MappingNode, path, "must map attribute names to values, e.g. {type: com.example.order}", "needs at least one attribute") {
		return nil
	}
	x := &expr{dialect: d}
	seen := make(map[string]int, len(n.Content)/2)
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		name := k.Value
		switch {
		case k.Kind != yaml.ScalarNode || !validAttrName(name):
			p.errorf(k, path, "%q is not a valid attribute name (lowercase letters a-z and digits 0-9 only)", name)
		case name == "data":
			p.errorf(k, path, `"data" is the event payload, not an attribute; filters see attributes only`)
		case seen[name] != 0:
			p.errorf(k, path, "%q appears twice (lines %d and %d)", name, seen[name], k.Line)
		case v == nil || v.Kind != yaml.ScalarNode || v.Tag == "!!null":
			p.errorf(orKey(v, k), path, "value for %q must be a string", name)
		case v.Tag != "!!str":
			p.errorf(v, path, "value for %q must be a string; quote it: %q", name, v.Value)
		case v.Value == "":
			p.errorf(v, path, "value for %q must not be empty", name)
		default:
			seen[name] = k.Line
			x.conds = append(x.conds, cond{attr: contextAttrs[name], name: name, value: v.Value})
			continue
		}
		ok = false
	}
	if !ok {
		return nil
	}
	sort.Slice(x.conds, func(i, j int) bool { return x.conds[i].name < x.conds[j].name })
	return x
}

// validAttrName applies the CloudEvents naming rule: lowercase ASCII
// letters and digits.
func validAttrName(s string) bool {
	return s != "" && only(s, func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' })
}
