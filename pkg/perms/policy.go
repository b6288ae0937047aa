package perms

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Policy is the permissions of the principals named in a policy file, by
// subject (a JWT's sub, a Macaroon's identifier). A principal it does not
// name is not restricted by it.
type Policy struct {
	file string
	sets map[string]Set
}

// For returns the Set of subject, and whether the policy names it.
func (p *Policy) For(subject string) (Set, bool) {
	if p == nil {
		return Set{}, false
	}
	s, ok := p.sets[subject]
	return s, ok
}

// Len is how many principals the policy restricts.
func (p *Policy) Len() int {
	if p == nil {
		return 0
	}
	return len(p.sets)
}

// PolicyError is one problem at one line of a policy file, for example
//
//	policy.yaml: line 6: principal "cart": source_prefixes[1]: "/shop/x" overlaps "/shop" (line 5); keep one
type PolicyError struct {
	File      string
	Line      int
	Principal string // empty outside a principal
	Field     string // e.g. "source_prefixes[1]"
	Msg       string
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: line %d: ", e.File, e.Line)
	if e.Principal != "" {
		fmt.Fprintf(&b, "principal %q: ", e.Principal)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Fields of a principal in a policy file.
const (
	FieldTopics         = "topics"
	FieldRoutes         = "routes"
	FieldSourcePrefixes = "source_prefixes"
	FieldTypePrefixes   = "type_prefixes"
)

var principalFields = []string{FieldTopics, FieldRoutes, FieldSourcePrefixes, FieldTypePrefixes}

// LoadPolicy reads and checks a policy file:
//
//	principals:
//	  cart-service:                        # a JWT sub or a Macaroon identifier
//	    topics: [orders]                   # topics it may publish to (?topic=)
//	    routes: [shop-in]                  # HTTP-fed routes it may publish through (?route=)
//	    source_prefixes: [/shop]           # sources it may claim, and read
//	    type_prefixes: [com.example.order.] # types it may send, and read
//
// A field left out does not restrict. Every problem (an unknown field, a
// principal or value given twice, a prefix another one of the list
// covers, an empty list or value, a value with a space or a control
// character) is a *PolicyError naming the file and the line; all are
// reported, joined.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auditbus: policy file: %w", err)
	}
	return ParsePolicy(path, data)
}

// ParsePolicy is LoadPolicy on the file's contents; name is used in errors.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	var doc, extra yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, err)
	case !errors.Is(dec.Decode(&extra), io.EOF):
		return nil, &PolicyError{File: name, Line: extra.Line, Msg: "holds more than one YAML document; write every principal in one"}
	}
	pp := &policyParser{file: name}
	pol := &Policy{file: name, sets: map[string]Set{}}
	if len(doc.Content) == 0 {
		pp.errorf(1, "", "principals", "the file is empty; it needs a principals mapping with at least one principal")
		return nil, pp.err()
	}
	top := pp.mapping(doc.Content[0], "", "the top level", []string{"principals"})
	pn, ok := top["principals"]
	switch {
	case !ok:
		if len(pp.errs) == 0 {
			pp.errorf(doc.Content[0].Line, "", "principals", "missing; list the principals to restrict under principals:")
		}
	case pn.val.Kind != yaml.MappingNode || len(pn.val.Content) == 0:
		pp.errorf(pn.val.Line, "", "principals", "must be a mapping of subjects to their permissions, with at least one subject")
	default:
		for i := 0; i+1 < len(pn.val.Content); i += 2 {
			k, v := pn.val.Content[i], pn.val.Content[i+1]
			subject := k.Value
			if _, dup := pol.sets[subject]; dup || strings.TrimSpace(subject) == "" {
				if dup {
					pp.errorf(k.Line, subject, "", "given twice; give each principal once")
				} else {
					pp.errorf(k.Line, "", "principals", "a principal with an empty name; name its JWT subject or Macaroon identifier")
				}
				continue
			}
			pol.sets[subject] = pp.principal(subject, k, v)
		}
	}
	if err := pp.err(); err != nil {
		return nil, err
	}
	return pol, nil
}

type policyParser struct {
	file string
	errs []error
}

func (pp *policyParser) errorf(line int, principal, field, format string, args ...any) {
	pp.errs = append(pp.errs, &PolicyError{File: pp.file, Line: line, Principal: principal, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (pp *policyParser) err() error { return errors.Join(pp.errs...) }

type keyed struct{ key, val *yaml.Node }

// mapping reads the keys of n, refusing unknown and repeated ones.
func (pp *policyParser) mapping(n *yaml.Node, principal, what string, accepted []string) map[string]keyed {
	if n.Kind != yaml.MappingNode {
		pp.errorf(n.Line, principal, "", "%s must be a mapping with the fields %s", what, strings.Join(accepted, ", "))
		return nil
	}
	m := map[string]keyed{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch prev, dup := m[k.Value]; {
		case !contains(accepted, k.Value):
			pp.errorf(k.Line, principal, clip(k.Value), "unknown field (accepted: %s)", strings.Join(accepted, ", "))
		case dup:
			pp.errorf(k.Line, principal, k.Value, "set twice (lines %d and %d)", prev.key.Line, k.Line)
		default:
			m[k.Value] = keyed{k, v}
		}
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// principal reads one principal's permissions.
func (pp *policyParser) principal(subject string, k, v *yaml.Node) Set {
	var s Set
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		pp.errorf(k.Line, subject, "", "no permissions; give at least one of %s, or leave the principal out", strings.Join(principalFields, ", "))
		return s
	}
	m := pp.mapping(v, subject, "a principal", principalFields)
	if len(m) == 0 {
		if v.Kind == yaml.MappingNode && len(v.Content) == 0 {
			pp.errorf(v.Line, subject, "", "no permissions; give at least one of %s, or leave the principal out", strings.Join(principalFields, ", "))
		}
		return s
	}
	rule := func(field string, prefix bool) *Rule {
		f, ok := m[field]
		if !ok {
			return nil
		}
		vals := pp.list(subject, field, f, prefix)
		return &Rule{Allow: vals, From: fmt.Sprintf("the policy %s line %d (principal %q, %s)", pp.file, f.key.Line, subject, field)}
	}
	s.Topics = rule(FieldTopics, false)
	s.Routes = rule(FieldRoutes, false)
	s.SourcePrefixes = rule(FieldSourcePrefixes, true)
	s.TypePrefixes = rule(FieldTypePrefixes, true)
	return s
}

// list reads a list of values; with prefix, no prefix may cover another.
func (pp *policyParser) list(subject, field string, f keyed, prefix bool) []string {
	n := f.val
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		pp.errorf(n.Line, subject, field, "must be a list of at least one value, such as [%s]; leave the field out to allow every value", example(field))
		return nil
	}
	var out []string
	lines := map[string]int{}
	for i, e := range n.Content {
		path := fmt.Sprintf("%s[%d]", field, i)
		if e.Kind != yaml.ScalarNode {
			pp.errorf(e.Line, subject, path, "must be a single value, not a list or mapping")
			continue
		}
		val := e.Value
		if err := CheckValue(val); err != nil {
			pp.errorf(e.Line, subject, path, "%q %v", clip(val), err)
			continue
		}
		if line, dup := lines[val]; dup {
			pp.errorf(e.Line, subject, path, "%q is given twice (lines %d and %d); give it once", clip(val), line, e.Line)
			continue
		}
		if prefix {
			for other, line := range lines {
				if strings.HasPrefix(val, other) || strings.HasPrefix(other, val) {
					short, long := other, val
					if len(val) < len(other) {
						short, long = val, other
					}
					pp.errorf(e.Line, subject, path, "%q overlaps %q (line %d): every value starting with %q also starts with %q; keep %q alone",
						clip(val), clip(other), line, clip(long), clip(short), clip(short))
				}
			}
		}
		lines[val] = e.Line
		out = append(out, val)
	}
	return out
}

func example(field string) string {
	switch field {
	case FieldTopics:
		return "orders"
	case FieldRoutes:
		return "shop-in"
	case FieldSourcePrefixes:
		return "/shop"
	}
	return "com.example.order."
}

// CheckValue refuses what no topic, route, source or type prefix may be:
// empty, or holding a space or a control character (caveats separate
// values with spaces).
func CheckValue(v string) error {
	if v == "" {
		return errors.New("is empty; an empty prefix would allow everything: leave the rule out instead")
	}
	for _, c := range v {
		if unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return errors.New("holds a space or a control character, which no source, type, topic or route has")
		}
	}
	return nil
}
