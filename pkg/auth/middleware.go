package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/auditbus/auditbus/pkg/apierror"
)

// The scopes of the daemon's HTTP API.
const (
	ScopeEventsWrite = "events:write" // POST /v1/events
	ScopeAuditRead   = "audit:read"   // GET /v1/events and the audit query endpoints
	ScopeReplayWrite = "replay:write" // starting replays
)

// Realm is the realm of the WWW-Authenticate challenges.
const Realm = "auditbus"

// Require returns middleware that lets a request through only with a valid
// bearer token granting scope (several space-separated scopes must all be
// granted; "" asks for a valid token only). The verified Principal is put
// in the request's context (see FromContext).
//
// A refused request gets 401, or 403 when only the scope is missing, with a
// WWW-Authenticate challenge (RFC 6750 §3) and the JSON error body of
// package apierror. On a nil or unconfigured Verifier the middleware lets
// every request through unchanged: whether that is allowed is the
// daemon's decision (see CheckListen).
func (v *Verifier) Require(scope string) func(http.Handler) http.Handler {
	need := strings.Fields(scope)
	return func(next http.Handler) http.Handler {
		if !v.Configured() {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := v.Authenticate(r)
			if err == nil {
				err = p.require(need)
			}
			if err != nil {
				if r.ContentLength != 0 {
					// Answer now and close, rather than read (or wait
					// for) a body nobody will use: net/http drains up to
					// 256 KiB of it before answering a kept-alive
					// connection.
					w.Header().Set("Connection", "close")
				}
				writeError(w, err, scope)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
		})
	}
}

// require returns an *Error naming the first scope in need that p lacks.
func (p Principal) require(need []string) error {
	for _, s := range need {
		if p.HasScope(s) {
			continue
		}
		has := "no scopes"
		if len(p.Scopes) > 0 {
			has = "the scopes " + clipAll(p.Scopes)
		}
		who := ""
		if p.Subject != "" {
			who = fmt.Sprintf(" (subject %q)", clip(p.Subject))
		}
		return newError(ErrInsufficientScope, fmt.Sprintf("the token%s lacks the scope %q this endpoint needs; it has %s; request a token with scope %q", who, s, has, s), nil)
	}
	return nil
}

// writeError answers with err's status, a WWW-Authenticate challenge and
// the JSON error body.
func writeError(w http.ResponseWriter, err error, scope string) {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		e = newError(ErrNoToken, "the request could not be authenticated", err)
	}
	w.Header().Set("WWW-Authenticate", challenge(e, scope))
	apierror.Write(w, e.Status(), e.Code(), e.Message)
}

// challenge is the WWW-Authenticate value of RFC 6750 §3. A request with
// no bearer credentials gets no error attribute (§3.1 says it SHOULD NOT).
func challenge(e *Error, scope string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="` + Realm + `"`)
	switch e.Reason {
	case ErrNoToken:
	case ErrInsufficientScope:
		b.WriteString(`, error="insufficient_scope", error_description="` + quotable(e.Message) + `"`)
	default:
		b.WriteString(`, error="invalid_token", error_description="` + quotable(e.Message) + `"`)
	}
	if scope != "" {
		b.WriteString(`, scope="` + quotable(scope) + `"`)
	}
	return b.String()
}

// quotable keeps the characters RFC 6750 allows in error_description and
// scope (printable ASCII but '"' and '\'), turning double quotes into
// single ones and dropping the rest.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\' || r < 0x20 || r > 0x7e:
			return -1
		}
		return r
	}, s)
}

type principalKey struct{}

// NewContext returns a copy of ctx that carries p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal Require put in a request's context;
// ok is false when the request was not authenticated (no Verifier is
// configured, or the handler is not behind Require).
func FromContext(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(Principal)
	return p, ok
}
