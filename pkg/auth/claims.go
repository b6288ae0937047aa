package auth

import (
	"encoding/json"
	"fmt"

	"github.com/auditbus/auditbus/pkg/perms"
)

// The JWT claims that carry permissions, each an array of strings. A
// claim left out does not restrict; an empty array allows nothing.
const (
	ClaimTopics         = "auditbus_topics"          // topics the subject may publish to
	ClaimRoutes         = "auditbus_routes"          // HTTP-fed routes it may publish through
	ClaimSourcePrefixes = "auditbus_source_prefixes" // sources it may claim, and read
	ClaimTypePrefixes   = "auditbus_type_prefixes"   // types it may send, and read
)

// PermissionClaims are the permission claims of a JWT, each an array of
// strings (ClaimTopics, ClaimRoutes, ClaimSourcePrefixes,
// ClaimTypePrefixes); an issuer may embed the type in its own claims.
// The Verifier keeps them raw until the signature is checked.
type PermissionClaims struct {
	Topics         json.RawMessage `json:"auditbus_topics,omitempty"`
	Routes         json.RawMessage `json:"auditbus_routes,omitempty"`
	SourcePrefixes json.RawMessage `json:"auditbus_source_prefixes,omitempty"`
	TypePrefixes   json.RawMessage `json:"auditbus_type_prefixes,omitempty"`
	perms          perms.Set
}

// parse reads the claims that are present into c.perms.
func (c *PermissionClaims) parse() error {
	var err error
	for _, f := range []struct {
		name   string
		raw    json.RawMessage
		prefix bool
		dst    **perms.Rule
	}{
		{ClaimTopics, c.Topics, false, &c.perms.Topics},
		{ClaimRoutes, c.Routes, false, &c.perms.Routes},
		{ClaimSourcePrefixes, c.SourcePrefixes, true, &c.perms.SourcePrefixes},
		{ClaimTypePrefixes, c.TypePrefixes, true, &c.perms.TypePrefixes},
	} {
		if *f.dst, err = permClaim(f.name, f.raw, f.prefix); err != nil {
			return err
		}
	}
	return nil
}

// permClaim reads one permission claim: nil when absent.
func permClaim(name string, raw json.RawMessage, prefix bool) (*perms.Rule, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, newError(ErrInvalidClaims, fmt.Sprintf("the token's %q claim is not an array of strings; ask the issuer for it in that form", name), err)
	}
	for _, v := range list {
		if err := perms.CheckValue(v); err != nil {
			return nil, newError(ErrInvalidClaims, fmt.Sprintf("the token's %q claim: value %q %v", name, clip(v), err), nil)
		}
	}
	if prefix {
		list = perms.Minimal(list)
	}
	if list == nil {
		list = []string{}
	}
	return &perms.Rule{Allow: list, From: fmt.Sprintf("the token's claim %q", name)}, nil
}
