// Package egress decides which network addresses the daemon's webhooks
// may reach, and enforces it where they connect: a net.Dialer Control hook
// checks the address each connection is about to use, after DNS
// resolution, so a host name that resolves (or is rebound) to a denied
// address is refused too.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrDenied is wrapped by every refusal of a Policy.
var ErrDenied = errors.New("egress: address not allowed")

// Variables that configure the daemon's policies, named in refusals.
const (
	AllowVar = "AUDITBUS_WEBHOOK_ALLOW"
	DenyVar  = "AUDITBUS_WEBHOOK_DENY"
)

// Internal are the ranges a webhook given through the API may not reach
// unless AUDITBUS_WEBHOOK_ALLOW names them: this host, private networks,
// link-local addresses (cloud metadata services among them: 169.254.169.254,
// fd00:ec2::254, 100.100.100.200), multicast and reserved ranges.
var Internal = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this" network
	netip.MustParsePrefix("10.0.0.0/8"),     // private
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT, Alibaba's metadata
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),  // private
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"), // private
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("224.0.0.0/3"),    // multicast, reserved, broadcast
	netip.MustParsePrefix("::/127"),         // unspecified, loopback
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: IPv4 behind IPv6
	netip.MustParsePrefix("64:ff9b:1::/48"), // local NAT64
	netip.MustParsePrefix("fc00::/7"),       // unique local, AWS metadata fd00:ec2::254
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("ff00::/8"),       // multicast
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("2002::/16"),      // 6to4: IPv4 inside
	netip.MustParsePrefix("100::/64"),       // discard
}

// InternalNames are host names a webhook given through the API may not
// name unless AUDITBUS_WEBHOOK_ALLOW does: this host and the cloud
// metadata services, whatever they resolve to.
var InternalNames = []string{"localhost", ".localhost", "metadata.google.internal", "metadata", "instance-data", ".internal"}

// Policy says which addresses webhooks may connect to. Its rules, in
// order: a host or address Deny names is refused; one Allow names is
// allowed; then a strict policy refuses Internal and InternalNames, and
// a trusted one allows the rest. A nil *Policy allows everything.
type Policy struct {
	allow, deny rules
	strict      bool
	resolver    *net.Resolver // nil: net.DefaultResolver
}

// WithResolver returns a copy of p that looks host names up with r, both
// in Check and when its Dialer connects; a nil r is net.DefaultResolver.
// A nil Policy stays nil.
func (p *Policy) WithResolver(r *net.Resolver) *Policy {
	if p == nil {
		return nil
	}
	c := *p
	c.resolver = r
	return &c
}

func (p *Policy) lookup() *net.Resolver {
	if p.resolver != nil {
		return p.resolver
	}
	return net.DefaultResolver
}

// rules are CIDRs and host names; a name with a leading dot is a domain
// and every name under it.
type rules struct {
	nets  []netip.Prefix
	names []string
}

// New builds the policies of the daemon from AUDITBUS_WEBHOOK_ALLOW and
// AUDITBUS_WEBHOOK_DENY, each a list of CIDRs ("10.1.0.0/16"), addresses
// and host names ("hooks.example.com", ".example.com" for a domain):
// strict for the webhooks given through the API, trusted for those of the
// operator's routes file. Errors name the variable and the entry.
func New(allow, deny []string) (strict, trusted *Policy, err error) {
	a, err := parseRules(AllowVar, allow)
	if err != nil {
		return nil, nil, err
	}
	d, err := parseRules(DenyVar, deny)
	if err != nil {
		return nil, nil, err
	}
	return &Policy{allow: a, deny: d, strict: true}, &Policy{allow: a, deny: d}, nil
}

func parseRules(name string, list []string) (rules, error) {
	var r rules
	for _, s := range list {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			continue
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return r, fmt.Errorf("%s: %q is not a CIDR such as 10.0.0.0/8 or fd00::/8: %v", name, s, err)
			}
			r.nets = append(r.nets, p.Masked())
		default:
			if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
				r.nets = append(r.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			n := strings.ToLower(strings.TrimSuffix(s, "."))
			if !validName(strings.TrimPrefix(n, ".")) {
				return r, fmt.Errorf("%s: %q is neither a CIDR, an address nor a host name (a leading dot names a domain: .example.com)", name, s)
			}
			r.names = append(r.names, n)
		}
	}
	return r, nil
}

func validName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func (r rules) hasName(host string) (string, bool) {
	for _, n := range r.names {
		if host == n || strings.HasPrefix(n, ".") && strings.HasSuffix(host, n) {
			return n, true
		}
	}
	return "", false
}

func (r rules) hasAddr(a netip.Addr) (netip.Prefix, bool) {
	for _, p := range r.nets {
		if p.Contains(a) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// DeniedError is a host or address a Policy refuses.
type DeniedError struct {
	Host string     // the host name or address as the URL gives it
	Addr netip.Addr // the address it resolved to; invalid for a refused name
	Rule string     // what refused it: "AUDITBUS_WEBHOOK_DENY 10.0.0.0/8", "internal range 127.0.0.0/8"
}

func (e *DeniedError) Error() string {
	what := e.Host
	if e.Addr.IsValid() && e.Addr.String() != e.Host {
		what += " (" + e.Addr.String() + ")"
	}
	fix := "; a webhook given through the API may reach it only when " + AllowVar + " names it"
	if strings.HasPrefix(e.Rule, DenyVar) {
		fix = ""
	}
	return fmt.Sprintf("egress policy: %s is not allowed: %s%s", what, e.Rule, fix)
}

// Unwrap makes a DeniedError errors.Is ErrDenied.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// CheckHost checks a host name or address literal by itself, before any
// resolution. A nil Policy allows everything.
func (p *Policy) CheckHost(host string) error {
	if p == nil {
		return nil
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return p.CheckAddr(host, a)
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if n, ok := p.deny.hasName(h); ok {
		return &DeniedError{Host: host, Rule: DenyVar + " " + n}
	}
	if _, ok := p.allow.hasName(h); ok {
		return nil
	}
	if p.strict {
		if n, ok := (rules{names: InternalNames}).hasName(h); ok {
			return &DeniedError{Host: host, Rule: "internal name " + n}
		}
	}
	return nil
}

// CheckAddr checks the address a connection to host is about to use.
func (p *Policy) CheckAddr(host string, a netip.Addr) error {
	if p == nil {
		return nil
	}
	a = a.Unmap().WithZone("")
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if n, ok := p.deny.hasAddr(a); ok {
		return &DeniedError{Host: host, Addr: a, Rule: DenyVar + " " + n.String()}
	}
	if n, ok := p.deny.hasName(h); ok {
		return &DeniedError{Host: host, Addr: a, Rule: DenyVar + " " + n}
	}
	if _, ok := p.allow.hasAddr(a); ok {
		return nil
	}
	if _, ok := p.allow.hasName(h); ok {
		return nil
	}
	if !p.strict {
		return nil
	}
	if n, ok := (rules{names: InternalNames}).hasName(h); ok {
		return &DeniedError{Host: host, Addr: a, Rule: "internal name " + n}
	}
	if n, ok := (rules{nets: Internal}).hasAddr(a); ok {
		return &DeniedError{Host: host, Addr: a, Rule: "internal range " + n.String()}
	}
	return nil
}

// Check checks host and every address it resolves to now, so that a
// request naming a denied host is refused at once; the dial checks again.
func (p *Policy) Check(ctx context.Context, host string) error {
	if p == nil {
		return nil
	}
	if err := p.CheckHost(host); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return nil
	}
	addrs, err := p.lookup().LookupNetIP(ctx, "ip", host)
	if err != nil {
		// Unresolvable now: the dial decides, and fails or checks.
		return nil
	}
	for _, a := range addrs {
		if err := p.CheckAddr(host, a); err != nil {
			return err
		}
	}
	return nil
}

// Dialer returns a DialContext for an http.Transport that connects only
// where p allows: the host name is checked first, then, in the dialer's
// Control hook, every address the connection is about to use. A nil
// Policy returns a plain dialer.
func (p *Policy) Dialer(timeout, keepAlive time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if p == nil {
		return (&net.Dialer{Timeout: timeout, KeepAlive: keepAlive}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if err := p.CheckHost(host); err != nil {
			return nil, err
		}
		d := &net.Dialer{Timeout: timeout, KeepAlive: keepAlive, Resolver: p.resolver, Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("egress policy: %q is not an address: %w", address, ErrDenied)
			}
			return p.CheckAddr(host, ap.Addr())
		}}
		return d.DialContext(ctx, network, addr)
	}
}

// Direct reports whether connections under p must go straight to the
// target, never through a proxy from HTTP_PROXY: a proxy would connect
// on their behalf where p cannot check. True for the strict policy.
func (p *Policy) Direct() bool { return p != nil && p.strict }
