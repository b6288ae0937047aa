package router

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ConfigError is one problem at one place in a routes file or a filter.
// Its message names the file, the route (by name, or by index when it has
// none), the line and the field, for example
//
//	routes.yaml: route "orders" (line 12): destinations[1].webhook.timeout: "5 seconds" is not a duration (e.g. 5s)
type ConfigError struct {
	File  string // the name given to ParseRoutes; empty for ParseFilter
	Route string // the route's name; empty when it has none
	Index int    // the route's position in routes, from 0; -1 outside a route
	Line  int    // line of the offending node, from 1; 0 when unknown
	Field string // path of the field inside the route, e.g. "filter.all[1].prefix"
	Msg   string // what is wrong and, where it helps, what is accepted
}

// Error formats the problem as the type's comment shows.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	line := e.Line > 0
	switch {
	case e.Route != "":
		fmt.Fprintf(&b, "route %q", e.Route)
	case e.Index >= 0:
		fmt.Fprintf(&b, "routes[%d]", e.Index)
	case line && e.File != "":
		fmt.Fprintf(&b, "line %d: ", e.Line)
		line = false
	}
	if e.Index >= 0 || e.Route != "" {
		if line {
			fmt.Fprintf(&b, " (line %d)", e.Line)
			line = false
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if line {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// parser walks YAML nodes and collects every error with its place. It
// checks the keys of each mapping itself: yaml.v3's KnownFields applies to
// decoding into structs, where its messages name Go types and neither the
// route nor the path.
type parser struct {
	file  string
	route string
	index int
	line  int // line of the current route, for errors without a node
	errs  []error
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	line := p.line
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	p.errs = append(p.errs, &ConfigError{File: p.file, Route: p.route, Index: p.index,
		Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) err() error { return errors.Join(p.errs...) }

// resolve follows aliases; it returns nil for nil.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// orKey is v, or the key k when v is absent, for an error's line.
func orKey(v, k *yaml.Node) *yaml.Node {
	if v == nil {
		return k
	}
	return v
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// fields returns the values of mapping n by key, reporting keys that are
// not accepted, repeated keys and a non-mapping n. Merge keys (<<) fill in
// keys the mapping does not set. ok is false when n is not a mapping.
func (p *parser) fields(n *yaml.Node, path string, accepted ...string) (map[string]*yaml.Node, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		p.errorf(n, path, "must be a mapping with the fields %s", strings.Join(accepted, ", "))
		return nil, false
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		switch {
		case k.Kind == yaml.ScalarNode && name == "<<" && k.Tag == "!!merge":
			merged = append(merged, v)
		case !contains(accepted, name):
			p.errorf(k, join(path, name), "unknown field (accepted: %s)", strings.Join(accepted, ", "))
		case m[name] != nil:
			p.errorf(k, join(path, name), "set twice (lines %d and %d)", m[name].Line, k.Line)
		default:
			m[name] = v
		}
	}
	for _, v := range merged {
		v = resolve(v)
		srcs := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			srcs = v.Content
		}
		for _, src := range srcs {
			if sm, ok := p.fields(src, path, accepted...); ok {
				for k, sv := range sm {
					if m[k] == nil {
						m[k] = sv
					}
				}
			}
		}
	}
	return m, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// scalar returns the text of a scalar that is present and not null.
func (p *parser) scalar(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, path, "must be a single value, not a list or mapping")
		return "", false
	}
	return n.Value, true
}

// str reads an optional string; a present value must not be empty.
func (p *parser) str(n *yaml.Node, path string) string {
	s, ok := p.scalar(n, path)
	if ok && strings.TrimSpace(s) == "" {
		p.errorf(n, path, "must not be empty")
	}
	return s
}

func (p *parser) duration(n *yaml.Node, path string, def time.Duration) time.Duration {
	s, ok := p.scalar(n, path)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(n, path, "%q is not a duration (e.g. 5s)", s)
	case d <= 0:
		p.errorf(n, path, "must be positive, not %s", s)
	default:
		return d
	}
	return def
}

func (p *parser) count(n *yaml.Node, path string, def int) int {
	s, ok := p.scalar(n, path)
	if !ok {
		return def
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 1 {
		p.errorf(n, path, "%q is not a whole number >= 1", s)
		return def
	}
	return i
}

func (p *parser) boolean(n *yaml.Node, path string) bool {
	n = resolve(n)
	var b bool
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		p.errorf(n, path, "%q must be true or false", n.Value)
	}
	return b
}
