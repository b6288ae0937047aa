package cehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// NewRequest returns a POST of e to rawURL in binary content mode (see
// [Encode]), with the extra headers given (authorization, say). The event
// owns the ce- headers and Content-Type: such headers in headers are
// dropped. An event that breaks the CloudEvents 1.0 rules is refused with
// an error wrapping [bus.ErrInvalidEvent].
func NewRequest(ctx context.Context, rawURL string, e *event.Event, headers http.Header) (*http.Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cehttp: new request: url %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("cehttp: new request: url %q: want an absolute http:// or https:// URL", u.Redacted())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("cehttp: new request to %q: %w", u.Redacted(), err)
	}
	for k, vs := range headers {
		k = textproto.CanonicalMIMEHeaderKey(k)
		if hasCEPrefix(k) || k == "Content-Type" {
			continue
		}
		req.Header[k] = vs
	}
	if err := Encode(req, e); err != nil {
		return nil, err
	}
	return req, nil
}

// Encode writes e into req in the HTTP binding's binary content mode:
// every attribute and extension as a ce- header, its value percent-encoded
// as section 3.1.3.2 requires; datacontenttype as Content-Type (removed
// when the event has none); the data as the body, replayable through
// req.GetBody. It sets headers and body only, not the method or URL.
func Encode(req *http.Request, e *event.Event) error {
	if req == nil {
		return errors.New("cehttp: encode: the request is nil")
	}
	if e == nil {
		return errors.New("cehttp: encode: the event is nil")
	}
	if err := bus.Validate(e); err != nil {
		return fmt.Errorf("cehttp: encode: %w", err)
	}
	ec := e.Context.(*event.EventContextV1) // Validate accepts 1.0 contexts only
	if req.Header == nil {
		req.Header = make(http.Header, 8+len(ec.Extensions))
	}
	// One backing array for every header's value slice.
	vals := make([]string, 0, 7+len(ec.Extensions))
	set := func(k, v string) {
		vals = append(vals, encodeHeaderValue(v))
		req.Header[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set("Ce-Specversion", event.CloudEventsVersionV1)
	set("Ce-Id", ec.ID)
	set("Ce-Source", ec.Source.String())
	set("Ce-Type", ec.Type)
	if ec.Subject != nil {
		set("Ce-Subject", *ec.Subject)
	}
	if ec.Time != nil && !ec.Time.IsZero() {
		set("Ce-Time", types.FormatTime(ec.Time.Time))
	}
	if ec.DataSchema != nil {
		set("Ce-Dataschema", ec.DataSchema.String())
	}
	for name, v := range ec.Extensions {
		s, err := types.Format(v)
		if err != nil {
			return fmt.Errorf("cehttp: encode event %q: extension %q: %w: %v", ec.ID, name, bus.ErrInvalidEvent, err)
		}
		set(textproto.CanonicalMIMEHeaderKey("ce-"+name), s)
	}
	if ec.DataContentType != nil {
		req.Header["Content-Type"] = []string{*ec.DataContentType}
	} else {
		delete(req.Header, "Content-Type")
	}
	setBody(req, e.DataEncoded)
	return nil
}

// setBody makes data the body of req, as http.NewRequest does for a
// *bytes.Reader.
func setBody(req *http.Request, data []byte) {
	req.ContentLength = int64(len(data))
	if len(data) == 0 {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(data))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}
