package signers

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/auditbus/auditbus/bus/signing"
	"gopkg.in/yaml.v3"
)

// ConfigError is one problem at one place in a signer registry file. Its
// message names the file, the signer (by key id, or by index when it has
// none), the line and the field, for example
//
//	signers.yaml: signer "shop-2026" (line 4): public_key_file: open keys/shop.pub: no such file or directory
type ConfigError struct {
	File   string // the registry file
	Signer string // the signer's key id; empty when it has none
	Index  int    // the signer's position in signers, from 0; -1 outside one
	Line   int    // line of the offending node, from 1; 0 when unknown
	Field  string // the field inside the signer, e.g. "sources[1]"
	Msg    string // what is wrong and what is accepted
}

// Error formats the problem as the type's comment shows.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	b.WriteString(": ")
	switch {
	case e.Signer != "":
		fmt.Fprintf(&b, "signer %q (line %d): ", e.Signer, e.Line)
	case e.Index >= 0:
		fmt.Fprintf(&b, "signers[%d] (line %d): ", e.Index, e.Line)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// keyID is what a key id may be: it is written into ledger entries and
// DSSE envelopes, so it is short and plain.
var keyID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$`)

// parser collects every problem of a file with its place.
type parser struct {
	file   string
	signer string
	index  int
	line   int
	errs   []error
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	line := p.line
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	p.errs = append(p.errs, &ConfigError{File: p.file, Signer: p.signer, Index: p.index, Line: line, Field: field,
		Msg: fmt.Sprintf(format, args...)})
}

// Load reads the signer registry file at path (the daemon's
// AUDITBUS_SIGNERS_FILE) and the public keys it names, and checks it all.
// Key files named by a relative path are found beside the registry file.
// Every problem found is reported, each a *ConfigError naming the file and
// the line, joined with errors.Join.
func Load(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signer registry %s: %w (AUDITBUS_SIGNERS_FILE)", path, err)
	}
	return Parse(path, data)
}

// Parse is Load of a file already read: name is its path, which errors
// name and relative key files are resolved against.
func Parse(name string, data []byte) (*Registry, error) {
	p := &parser{file: name, index: -1}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		p.errorf(&extra, "", "holds more than one YAML document; list every signer in one")
		return nil, errors.Join(p.errs...)
	}
	var top *yaml.Node
	if len(doc.Content) == 1 {
		top = doc.Content[0]
	}
	if top == nil || top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		p.errorf(nil, "signers", "needs a list of at least one signer (key_id, public_key_file, sources, types); the file is empty")
		return nil, errors.Join(p.errs...)
	}
	m := p.mapping(top, "", "signers")
	list := m["signers"]
	switch {
	case m == nil:
		return nil, errors.Join(p.errs...)
	case list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0:
		p.errorf(orNode(list, top), "signers", "needs a list of at least one signer (key_id, public_key_file, sources, types)")
		return nil, errors.Join(p.errs...)
	}
	r := &Registry{keys: make(map[string]*signer, len(list.Content))}
	byKey := map[string]*signer{}
	for i, n := range list.Content {
		s := p.parseSigner(n, i, filepath.Dir(name))
		if s == nil {
			continue
		}
		if first, dup := r.keys[s.id]; dup {
			p.errorf(n, "key_id", "%q is also the key id of the signer at line %d; key ids must be unique", s.id, first.line)
			continue
		}
		if first, dup := byKey[s.pemKey]; dup {
			p.errorf(n, "public_key_file", "holds the same public key as signer %q (line %d); give each key one id", first.id, first.line)
			continue
		}
		r.keys[s.id], byKey[s.pemKey] = s, s
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return r, nil
}

// parseSigner reads signers[i]; nil when it has errors.
func (p *parser) parseSigner(n *yaml.Node, i int, dir string) *signer {
	p.signer, p.index, p.line = "", i, 0
	if n != nil {
		p.line = n.Line
	}
	before := len(p.errs)
	if n != nil && n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "key_id" && n.Content[j+1].Kind == yaml.ScalarNode {
				p.signer = n.Content[j+1].Value
			}
		}
	}
	m := p.mapping(n, "", "key_id", "public_key_file", "sources", "types")
	if m == nil {
		return nil
	}
	s := &signer{line: p.line}
	s.id = p.scalar(m["key_id"], n, "key_id")
	if s.id != "" && !keyID.MatchString(s.id) {
		p.errorf(m["key_id"], "key_id", "%q: a key id is 1 to 128 of A-Z a-z 0-9 . _ : / @ -, starting with a letter or digit", s.id)
	}
	if file := p.scalar(m["public_key_file"], n, "public_key_file"); file != "" {
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		pub, err := signing.LoadPublicKey(file)
		if err != nil {
			p.errorf(m["public_key_file"], "public_key_file", "%v (a PEM \"PUBLIC KEY\", Ed25519 or ECDSA P-256, as auditbus keygen --pem writes)", err)
		} else if der, err := x509.MarshalPKIXPublicKey(pub); err == nil {
			s.pub, s.pemKey = pub, string(der)
		}
	}
	s.sources = p.prefixes(m["sources"], n, "sources", "source")
	s.types = p.prefixes(m["types"], n, "types", "type")
	if len(p.errs) > before {
		return nil
	}
	s.verified = "verified: " + s.id
	return s
}

// prefixes reads a list of prefixes that do not overlap: none covers
// another, which would be a rule written twice or a typo.
func (p *parser) prefixes(n, parent *yaml.Node, field, what string) []string {
	if n == nil || n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(orNode(n, parent), field, "needs a list of at least one %s prefix the key may sign for (\"*\" for any %s)", what, what)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	lines := make([]int, 0, len(n.Content))
	for j, v := range n.Content {
		path := fmt.Sprintf("%s[%d]", field, j)
		s := p.scalar(v, parent, path)
		if s == "" {
			continue
		}
		for k, o := range out {
			if covers(o, s) || covers(s, o) {
				p.errorf(v, path, "%q overlaps %s[%d] %q (line %d): one covers the other; keep the one you mean", s, field, k, o, lines[k])
			}
		}
		out, lines = append(out, s), append(lines, v.Line)
	}
	return out
}

// covers reports whether prefix a matches everything prefix b does.
func covers(a, b string) bool { return a == Any || strings.HasPrefix(b, a) }

// scalar reads a required, non-empty string.
func (p *parser) scalar(n, parent *yaml.Node, field string) string {
	switch {
	case n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		p.errorf(orNode(n, parent), field, "required")
	case n.Kind != yaml.ScalarNode:
		p.errorf(n, field, "must be a single value, not a list or mapping")
	case strings.TrimSpace(n.Value) == "":
		p.errorf(n, field, "must not be empty")
	default:
		return n.Value
	}
	return ""
}

// mapping returns the values of mapping n by key, reporting keys not
// accepted, repeated keys and a non-mapping n (then it returns nil).
func (p *parser) mapping(n *yaml.Node, field string, accepted ...string) map[string]*yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a mapping with the fields %s", strings.Join(accepted, ", "))
		return nil
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !contains(accepted, k.Value):
			p.errorf(k, k.Value, "unknown field (accepted: %s)", strings.Join(accepted, ", "))
		case m[k.Value] != nil:
			p.errorf(k, k.Value, "set twice (lines %d and %d)", m[k.Value].Line, k.Line)
		default:
			m[k.Value] = v
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

func orNode(n, alt *yaml.Node) *yaml.Node {
	if n == nil {
		return alt
	}
	return n
}
