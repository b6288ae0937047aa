package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	cliptext "github.com/auditbus/auditbus/bus/clip"
	"github.com/auditbus/auditbus/pkg/perms"
	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes is the longest bearer token read; a longer one is refused
// as malformed before any decoding.
const MaxTokenBytes = 16 << 10

// Verifier checks bearer tokens. Build it once with New; it is safe for
// concurrent use and does no file or network I/O per request. A nil
// Verifier, or one built from a Config without keys, is not configured:
// Require lets every request through.
type Verifier struct {
	keys     *keySet
	parser   *jwt.Parser
	issuer   string
	audience []string
	leeway   time.Duration
	// macKey is the Macaroon root key; nil accepts no Macaroons.
	macKey []byte
	// policy restricts principals by subject; nil restricts none.
	policy *perms.Policy
	now    func() time.Time
}

// New builds a Verifier from cfg. It refuses keys of the wrong type or
// size, two keys with one kid, and a leeway outside 0 to MaxLeeway; each
// error names the key's origin.
func New(cfg Config) (*Verifier, error) {
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		return nil, fmt.Errorf("auditbus: auth: leeway %s: want 0 to %s", cfg.Leeway, MaxLeeway)
	}
	if cfg.MacaroonKey != nil && len(cfg.MacaroonKey) < MinMacaroonKeyBytes {
		return nil, fmt.Errorf("auditbus: auth: the Macaroon root key has %d bytes; at least %d random bytes are needed", len(cfg.MacaroonKey), MinMacaroonKeyBytes)
	}
	v := &Verifier{
		issuer: cfg.Issuer, audience: slices.Clone(cfg.Audience), leeway: cfg.Leeway,
		macKey: slices.Clone(cfg.MacaroonKey), policy: cfg.Policy, now: time.Now,
	}
	if len(cfg.Keys) == 0 {
		return v, nil
	}
	ks, err := newKeySet(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("auditbus: auth: %w", err)
	}
	v.keys = ks
	// The key set, not the parser, decides the algorithm: WithValidMethods
	// would refuse "none" before the key set can say why.
	v.parser = jwt.NewParser(jwt.WithLeeway(cfg.Leeway), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	return v, nil
}

// Configured reports whether v has keys (JWT keys or a Macaroon root key),
// so that tokens are checked.
func (v *Verifier) Configured() bool { return v != nil && (v.keys != nil || v.macKey != nil) }

// withPolicy is set narrowed by the policy's rules for subject, if any: a
// token can narrow what the policy allows, never widen it.
func (v *Verifier) withPolicy(subject string, set perms.Set) perms.Set {
	if v.policy == nil {
		return set
	}
	if ps, ok := v.policy.For(subject); ok {
		return ps.Intersect(set)
	}
	return set
}

// Principal is who a verified token speaks for.
type Principal struct {
	// Subject is the sub claim: who the token was issued to.
	Subject string
	// Issuer is the iss claim.
	Issuer string
	// Scopes are the granted scopes, from the scope claim (a space-separated
	// string) and the scp claim (an array of strings), in that order.
	Scopes []string
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
	// KeyID is the token's kid header, if any.
	KeyID string
	// Kind is the kind of token: KindJWT or KindMacaroon.
	Kind string
	// Permissions narrow what the principal may publish and read within
	// its scopes: from the token's permission claims or caveats, and the
	// policy file's rules for Subject. The zero Set restricts nothing.
	Permissions perms.Set
}

// The kinds of bearer token.
const (
	KindJWT      = "jwt"
	KindMacaroon = "macaroon"
)

// HasScope reports whether the principal was granted scope.
func (p Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

// Authenticate verifies the bearer token of r's Authorization header. It
// does not check scopes. Errors are *Error.
func (v *Verifier) Authenticate(r *http.Request) (Principal, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return Principal{}, newError(ErrNoToken, "this endpoint needs a bearer token: send the header Authorization: Bearer <token>", nil)
	}
	if len(vals) > 1 {
		return Principal{}, newError(ErrMalformedToken, fmt.Sprintf("the request has %d Authorization headers; send one: Authorization: Bearer <token>", len(vals)), nil)
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// What came instead may be the token itself, sent without its
		// scheme: never echo it.
		return Principal{}, newError(ErrNoToken, "the Authorization header does not use the Bearer scheme; this endpoint needs Authorization: Bearer <token>", nil)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return Principal{}, newError(ErrMalformedToken, "the Authorization header says Bearer but holds no token; send Authorization: Bearer <token>", nil)
	}
	return v.Verify(token)
}

// Verify checks a token. A JWT in compact form: its signature against the
// configured keys, exp (required), nbf and iat with the leeway, and the
// issuer and audience when configured. A Macaroon (a token without '.'):
// its signature against the root key and every caveat (see ParseCaveat).
// Errors are *Error, usable with errors.Is against the Err* reasons.
func (v *Verifier) Verify(token string) (Principal, error) {
	if !v.Configured() {
		return Principal{}, newError(ErrUnknownKey, "this server has no keys to verify tokens with", nil)
	}
	if len(token) > MaxTokenBytes {
		return Principal{}, newError(ErrMalformedToken, fmt.Sprintf("the token is %d bytes; at most %d are accepted", len(token), MaxTokenBytes), nil)
	}
	if v.macKey != nil && isMacaroon(token) {
		return v.verifyMacaroon(token, v.now())
	}
	if v.keys == nil {
		return Principal{}, newError(ErrMalformedToken, "this server accepts Macaroons only (no JWT keys are configured), and the bearer token is not one; send a Macaroon minted with auditbus token mint", nil)
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(token, &c, v.keys.keyFor)
	if err != nil {
		return Principal{}, v.explain(err, tok, &c)
	}
	if v.issuer != "" && c.Issuer != v.issuer {
		if c.Issuer == "" {
			return Principal{}, newError(ErrWrongIssuer, fmt.Sprintf("the token has no issuer (iss); this server trusts tokens from %q", v.issuer), nil)
		}
		return Principal{}, newError(ErrWrongIssuer, fmt.Sprintf("the token's issuer %q is not the trusted issuer %q; get a token from %q", clip(c.Issuer), v.issuer, v.issuer), nil)
	}
	if len(v.audience) > 0 && len(c.Audience) == 0 {
		return Principal{}, newError(ErrWrongAudience, fmt.Sprintf("the token has no audience (aud); request a token for %s", quoteAll(v.audience)), nil)
	}
	if len(v.audience) > 0 && !slices.ContainsFunc(v.audience, func(a string) bool { return slices.Contains(c.Audience, a) }) {
		return Principal{}, newError(ErrWrongAudience, fmt.Sprintf("the token's audience %q does not include %s; request a token for this audience", clipAll(c.Audience), quoteAll(v.audience)), nil)
	}
	p := Principal{Subject: c.Subject, Issuer: c.Issuer, Scopes: c.scopes, Kind: KindJWT, Permissions: v.withPolicy(c.Subject, c.permissions())}
	if c.ExpiresAt != nil {
		p.ExpiresAt = c.ExpiresAt.Time
	}
	p.KeyID, _ = tok.Header["kid"].(string)
	return p, nil
}

// explain turns a jwt error into an *Error whose message says what to do.
func (v *Verifier) explain(err error, tok *jwt.Token, c *claims) *Error {
	// The time checks run only once the signature verified, so they come
	// before the errors of the key set and of the scope claims.
	const stamp = time.RFC3339
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return newError(ErrTokenExpired, fmt.Sprintf("the token expired at %s (clock skew allowed: %s); get a new token", c.ExpiresAt.UTC().Format(stamp), v.leeway), err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return newError(ErrTokenNotYetValid, fmt.Sprintf("the token is not valid before %s (nbf; clock skew allowed: %s); wait, or check the issuer's clock", c.NotBefore.UTC().Format(stamp), v.leeway), err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return newError(ErrTokenNotYetValid, fmt.Sprintf("the token was issued in the future, at %s (iat; clock skew allowed: %s); check the issuer's clock", c.IssuedAt.UTC().Format(stamp), v.leeway), err)
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return newError(ErrMalformedToken, "the bearer token is not a well-formed JWT ("+jwtDetail(err)+"); send the token in compact form header.payload.signature, as issued", err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// The header named no algorithm, or one the jwt library does not
		// know; a known but refused one is the key set's error above.
		alg, _ := tok.Header["alg"].(string)
		return newError(ErrUnsupportedAlgorithm, fmt.Sprintf("the token's algorithm (alg) %q is not accepted; this server accepts %s", clip(alg), v.keys.algList()), err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return newError(ErrBadSignature, fmt.Sprintf("the token's %s signature does not match any key this server trusts; get a token signed by a trusted issuer", tok.Method.Alg()), err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return newError(ErrInvalidClaims, "the token has no expiry (exp); this server accepts only tokens that expire", err)
	}
	return newError(ErrInvalidClaims, "the token's claims are not valid: "+jwtDetail(err), err)
}

// jwtDetail is the jwt library's message without its generic prefix.
func jwtDetail(err error) string {
	s := err.Error()
	for _, p := range []string{jwt.ErrTokenMalformed.Error() + ": ", jwt.ErrTokenInvalidClaims.Error() + ": "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// claims are the claims a Verifier reads. The scope claims are kept raw
// and parsed in Validate, after the signature is checked, so that a wrong
// type is reported as such rather than as a malformed token.
type claims struct {
	jwt.RegisteredClaims
	Scope  json.RawMessage `json:"scope"`
	Scp    json.RawMessage `json:"scp"`
	scopes []string
	// A pointer, so that a token without permission claims (the usual
	// one) costs nothing more to decode.
	*PermissionClaims
}

// Validate parses the scope and permission claims; the jwt parser calls
// it after its own checks.
func (c *claims) Validate() error {
	var err error
	if c.scopes, err = appendScopes(nil, "scope", c.Scope); err != nil {
		return err
	}
	if c.scopes, err = appendScopes(c.scopes, "scp", c.Scp); err != nil {
		return err
	}
	if c.PermissionClaims == nil {
		return nil
	}
	return c.PermissionClaims.parse()
}

// permissions is the Set of the token's permission claims.
func (c *claims) permissions() perms.Set {
	if c.PermissionClaims == nil {
		return perms.Set{}
	}
	return c.PermissionClaims.perms
}

// appendScopes accepts a space-separated string (RFC 8693 §4.2) or an
// array of strings, the form some issuers use for scp.
func appendScopes(dst []string, name string, raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return dst, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return append(dst, strings.Fields(s)...), nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return dst, newError(ErrInvalidClaims, fmt.Sprintf("the token's %q claim is neither a space-separated string nor an array of strings; ask the issuer for scopes in that form", name), err)
	}
	// Each element is one scope: one holding a space is not a valid scope
	// (RFC 6749 §3.3), and is kept whole so it matches none.
	return append(dst, list...), nil
}

// clip shortens text that came from a client before it is echoed back.
func clip(s string) string { return cliptext.Text(s, 64) }

func clipAll(list []string) string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = clip(s)
	}
	return strings.Join(out, " ")
}

func quoteAll(list []string) string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(out, " or ")
}
