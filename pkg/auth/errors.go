package auth

import (
	"errors"
	"net/http"
)

// The reasons a request is refused, usable with errors.Is on the *Error
// that Verify and Authenticate return. Each has a stable code for the JSON
// error body (see Error.Code).
var (
	ErrNoToken              = errors.New("no bearer token")
	ErrMalformedToken       = errors.New("malformed token")
	ErrUnsupportedAlgorithm = errors.New("unsupported signing algorithm")
	ErrUnknownKey           = errors.New("unknown key id")
	ErrBadSignature         = errors.New("bad signature")
	ErrTokenExpired         = errors.New("token expired")
	ErrTokenNotYetValid     = errors.New("token not yet valid")
	ErrWrongIssuer          = errors.New("wrong issuer")
	ErrWrongAudience        = errors.New("wrong audience")
	ErrInvalidClaims        = errors.New("invalid claims")
	ErrInsufficientScope    = errors.New("insufficient scope")
	ErrUnknownCaveat        = errors.New("unknown or malformed caveat")
)

// The stable codes of the JSON error body, one per reason above.
const (
	CodeUnauthorized         = "unauthorized"
	CodeMalformedToken       = "malformed_token"
	CodeUnsupportedAlgorithm = "unsupported_algorithm"
	CodeUnknownKey           = "unknown_key"
	CodeBadSignature         = "bad_signature"
	CodeTokenExpired         = "token_expired"
	CodeTokenNotYetValid     = "token_not_yet_valid"
	CodeWrongIssuer          = "wrong_issuer"
	CodeWrongAudience        = "wrong_audience"
	CodeInvalidClaims        = "invalid_claims"
	CodeInsufficientScope    = "insufficient_scope"
	CodeUnknownCaveat        = "unknown_caveat"
)

var codes = []struct {
	err  error
	code string
}{
	{ErrNoToken, CodeUnauthorized},
	{ErrMalformedToken, CodeMalformedToken},
	{ErrUnsupportedAlgorithm, CodeUnsupportedAlgorithm},
	{ErrUnknownKey, CodeUnknownKey},
	{ErrBadSignature, CodeBadSignature},
	{ErrTokenExpired, CodeTokenExpired},
	{ErrTokenNotYetValid, CodeTokenNotYetValid},
	{ErrWrongIssuer, CodeWrongIssuer},
	{ErrWrongAudience, CodeWrongAudience},
	{ErrInvalidClaims, CodeInvalidClaims},
	{ErrInsufficientScope, CodeInsufficientScope},
	{ErrUnknownCaveat, CodeUnknownCaveat},
}

// Error is why a request was refused: one of the Err* reasons, with a
// message for the client that says what is wrong and what to do.
type Error struct {
	// Reason is one of the Err* values above.
	Reason error
	// Message is the text for the client; it never holds key material.
	Message string
	// Cause is the underlying parse or verification error, for logs.
	Cause error
}

func newError(reason error, message string, cause error) *Error {
	return &Error{Reason: reason, Message: message, Cause: cause}
}

// Error returns the message.
func (e *Error) Error() string { return "auditbus: auth: " + e.Message }

// Unwrap returns the reason and the cause, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Cause}
}

// Code is the stable code of the reason, such as "token_expired".
func (e *Error) Code() string {
	for _, c := range codes {
		if e.Reason == c.err {
			return c.code
		}
	}
	return CodeUnauthorized
}

// Status is the HTTP status the error answers with: 403 for a missing
// scope, 401 for everything else.
func (e *Error) Status() int {
	if e.Reason == ErrInsufficientScope {
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}
