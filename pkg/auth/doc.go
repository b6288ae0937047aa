// Package auth authenticates requests to the daemon's HTTP API with JWT
// bearer tokens (RFC 6750) and checks their scopes.
//
// A Verifier accepts tokens signed with HS256 (a shared secret), RS256
// (RSA public keys) or EdDSA (Ed25519 public keys). Keys are read once, at
// start, from the environment (ConfigFromEnv):
//
//	AUDITBUS_AUTH_HS256_SECRET  HS256 shared secret, at least 32 bytes: raw, or base64 after "base64:"
//	AUDITBUS_AUTH_PUBLIC_KEYS   comma-separated PEM files of RSA or Ed25519 public keys
//	                            (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE blocks)
//	AUDITBUS_AUTH_JWKS_FILE     a JWK Set file: RSA, OKP (Ed25519) and oct keys, chosen by kid
//	AUDITBUS_AUTH_ISSUER        required iss claim (unchecked when unset)
//	AUDITBUS_AUTH_AUDIENCE      comma-separated; aud must hold one of them (unchecked when unset)
//	AUDITBUS_AUTH_LEEWAY        clock skew allowed on exp, nbf and iat (default 30s, at most 5m)
//	AUDITBUS_AUTH_MACAROON_KEY_FILE  the Macaroon root key, at least 32 random bytes
//
// The key decides the algorithm. An HS256 secret verifies only HS256, an
// RSA key only RS256, an Ed25519 key only EdDSA; a token is offered only
// the keys of the algorithm its header names, so an HS256 token signed
// with an RSA public key as its secret fails, and "alg":"none" is always
// refused. A token with a kid is checked against the key with that kid;
// keys without a kid (the secret, the PEM keys, JWKS keys without one)
// are tried for tokens with no kid and for tokens whose kid no key has.
// Every token must carry exp.
//
// Scopes come from the scope claim, a space-separated string (RFC 8693
// §4.2), and from the scp claim, an array of strings; either claim may
// take either form. The API's scopes are ScopeEventsWrite,
// ScopeAuditRead and ScopeReplayWrite.
//
// A bearer token without '.' is a Macaroon: the base64url of its v2
// binary encoding (gopkg.in/macaroon.v2), verified with the root key of
// AUDITBUS_AUTH_MACAROON_KEY_FILE (at least 32 bytes). Its first-party
// caveats (ParseCaveat: scope, topic, route, source-prefix, type-prefix,
// expires) say what it allows; several of one kind intersect, and one
// the server does not understand fails closed (ErrUnknownCaveat). Its
// identifier is the Principal's Subject. MintMacaroon and
// AttenuateMacaroon make and narrow them.
//
// Principal.Permissions (package perms) narrow what a principal may
// publish and read within its scopes: from a JWT's auditbus_* claims
// (ClaimTopics, ClaimRoutes, ClaimSourcePrefixes, ClaimTypePrefixes) or a
// Macaroon's caveats, intersected with Config.Policy's rules for the
// subject.
//
// Verifier.Require is the middleware: 401 for a missing or bad token, 403
// for a missing scope, each with a WWW-Authenticate challenge and the JSON
// error body of package apierror, whose stable codes are the Code*
// constants. Handlers find the caller with FromContext.
//
// With no keys the Verifier is not configured and Require lets requests
// through; CheckListen then allows only loopback addresses unless
// AUDITBUS_INSECURE=true.
package auth
