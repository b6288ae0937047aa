package cehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/egress"
	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// DefaultWebhookTimeout bounds one delivery when WebhookConfig.Timeout is 0.
const DefaultWebhookTimeout = 10 * time.Second

// TLSConfig is how a webhook's HTTPS connections are secured. The zero
// value trusts the system's CAs and sends no client certificate.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs to trust instead of the system's.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// mutual TLS; both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate. For tests only:
	// it makes the connection open to interception.
	InsecureSkipVerify bool
}

// WebhookConfig configures a [Webhook].
type WebhookConfig struct {
	// URL receives each event as a POST; http:// or https://.
	URL string
	// Timeout bounds one delivery, from connecting to reading the status;
	// 0 means DefaultWebhookTimeout.
	Timeout time.Duration
	// Headers are added to every request (authorization, say). ce- headers
	// and Content-Type belong to the event and are dropped.
	Headers http.Header
	// TLS secures https:// URLs.
	TLS TLSConfig
	// Tracer, if set, starts a client span around each call. Either way a
	// call made under a span sends that span's W3C traceparent and
	// tracestate headers.
	Tracer trace.Tracer
	// Egress, when set, is where the webhook may connect: the URL's host
	// is checked now and every address at each connection (see package
	// egress). Nil connects anywhere.
	Egress *egress.Policy
}

// Webhook delivers events to one HTTP endpoint in the binary content mode
// of the CloudEvents HTTP binding. Webhooks with the same TLS settings
// share one connection pool, kept alive between deliveries. It does not
// follow redirects: a 3xx answer is a permanent failure naming the target,
// since a redirected POST may turn into a GET. Safe for concurrent use.
type Webhook struct {
	url     string // as configured
	shown   string // for messages, without a password
	timeout time.Duration
	headers http.Header
	client  *http.Client
	tracer  trace.Tracer // nil: no spans
}

// NewWebhook checks cfg and returns a Webhook for it. Errors name the
// setting: an unusable URL, a negative timeout, a bad header, or TLS files
// that cannot be loaded.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("cehttp: webhook URL %q: %w", cfg.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("cehttp: webhook URL %q: want an absolute http:// or https:// URL", u.Redacted())
	}
	shown := u.Redacted()
	if err := cfg.Egress.CheckHost(u.Hostname()); err != nil {
		return nil, fmt.Errorf("cehttp: webhook URL %q: %w", shown, err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("cehttp: webhook %s: Timeout is %v; want 0 (the default, %v) or more", shown, cfg.Timeout, DefaultWebhookTimeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultWebhookTimeout
	}
	headers := make(http.Header, len(cfg.Headers))
	for k, vs := range cfg.Headers {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("cehttp: webhook %s: header name %q is not an HTTP token", shown, k)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, fmt.Errorf("cehttp: webhook %s: header %s: value contains CR, LF or NUL", shown, k)
			}
		}
		headers[textproto.CanonicalMIMEHeaderKey(k)] = append([]string(nil), vs...)
	}
	t, err := transportFor(cfg.TLS, cfg.Egress)
	if err != nil {
		return nil, fmt.Errorf("cehttp: webhook %s: %w", shown, err)
	}
	return &Webhook{url: cfg.URL, shown: shown, timeout: timeout, headers: headers, tracer: cfg.Tracer, client: &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// URL returns the webhook's URL, without any password, for logs.
func (w *Webhook) URL() string { return w.shown }

// Send POSTs e and waits for the answer. It returns nil on a 2xx status;
// otherwise a [*SendError] with the status, the start of the response
// body and any Retry-After delay, or the connection error. An event that
// cannot be encoded gives an error wrapping [bus.ErrInvalidEvent]. Use
// [IsPermanent] to decide whether to retry.
func (w *Webhook) Send(ctx context.Context, e *event.Event) error {
	if w == nil || w.client == nil {
		return errors.New("cehttp: send: the Webhook is nil or was not made by NewWebhook")
	}
	if w.tracer == nil {
		_, err := w.send(ctx, e)
		return err
	}
	ctx, span := w.tracer.Start(ctx, http.MethodPost, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", http.MethodPost), attribute.String("url.full", w.shown),
			bus.AttrMessageID.String(e.ID())))
	status, err := w.send(ctx, e)
	if status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	bus.EndSpan(span, err)
	return err
}

// send is Send without its span; it also returns the answer's status,
// 0 when none came.
func (w *Webhook) send(ctx context.Context, e *event.Event) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := NewRequest(ctx, w.url, e, w.headers)
	if err != nil {
		return 0, err
	}
	if tc := bus.TraceContextOf(ctx); tc.Parent != "" {
		req.Header.Set(bus.TraceParent, tc.Parent)
		if tc.State != "" {
			req.Header.Set(bus.TraceState, tc.State)
		}
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, &SendError{URL: w.shown, Err: err}
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	se := &SendError{URL: w.shown, StatusCode: resp.StatusCode, Body: snippet(resp.Body)}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		se.Location = resp.Header.Get("Location")
	}
	return resp.StatusCode, se
}

// SendError is a delivery a webhook did not accept.
type SendError struct {
	URL        string        // the webhook, without any password
	StatusCode int           // the HTTP status; 0 when no answer came
	Body       string        // the start of the answer's body, for logs
	RetryAfter time.Duration // the delay a 429 or 503 asked for, or 0
	Location   string        // where a 3xx answer pointed
	Err        error         // the connection error when StatusCode is 0
}

// Error formats as `cehttp: webhook POST https://x/y: 503 Service
// Unavailable (retry after 2s): "overloaded"`.
func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("cehttp: webhook POST ")
	b.WriteString(e.URL)
	b.WriteString(": ")
	if e.StatusCode == 0 {
		err := e.Err
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if err != nil {
			b.WriteString(err.Error())
		}
		return b.String()
	}
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.String())
		b.WriteByte(')')
	}
	if e.Location != "" {
		b.WriteString(" to ")
		b.WriteString(strconv.Quote(e.Location))
		b.WriteString(" (redirects are not followed; configure the final URL)")
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(strconv.Quote(e.Body))
	}
	return b.String()
}

// Unwrap returns the connection error, if any.
func (e *SendError) Unwrap() error { return e.Err }

// Permanent reports whether repeating the delivery cannot help: a 3xx, or
// a 4xx other than 408 Request Timeout and 429 Too Many Requests.
// Connection errors, timeouts and 5xx are worth retrying.
func (e *SendError) Permanent() bool {
	switch c := e.StatusCode; {
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests:
		return false
	default:
		return c >= 300 && c < 500
	}
}

// IsPermanent reports whether err, from [Webhook.Send], is a failure that
// retrying cannot fix: a [*SendError] whose Permanent says so, or an event
// that cannot be encoded ([bus.ErrInvalidEvent]). Anything else, nil
// included, is not permanent.
func IsPermanent(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Permanent()
	}
	return errors.Is(err, bus.ErrInvalidEvent)
}

// RetryAfter returns the delay a webhook asked for with Retry-After on a
// 429 or 503 answer, and whether it asked.
func RetryAfter(err error) (time.Duration, bool) {
	var se *SendError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an
// HTTP-date (RFC 9110, section 10.2.3). Unreadable or past values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		const most = int64(1<<63-1) / int64(time.Second)
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, most)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// snippetSize is how much of an error answer's body a SendError keeps.
const snippetSize = 256

// snippet reads the start of body as printable text for a log line.
func snippet(body io.Reader) string {
	buf := make([]byte, snippetSize)
	n, _ := io.ReadFull(body, buf)
	s := strings.TrimSpace(strings.ToValidUTF8(string(buf[:n]), "\uFFFD"))
	if n == snippetSize {
		s += "..."
	}
	return s
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// transports holds one tuned transport per TLS configuration and egress
// policy, so that webhooks with the same settings share connections. TLS
// files are read when a configuration is first used; a restart picks up
// new ones.
var transports struct {
	sync.Mutex
	m map[transportKey]*http.Transport
}

type transportKey struct {
	tls    TLSConfig
	egress *egress.Policy
}

func transportFor(tc TLSConfig, p *egress.Policy) (*http.Transport, error) {
	transports.Lock()
	defer transports.Unlock()
	key := transportKey{tc, p}
	if t, ok := transports.m[key]; ok {
		return t, nil
	}
	cfg, err := tc.load()
	if err != nil {
		return nil, err
	}
	proxy := http.ProxyFromEnvironment
	if p.Direct() {
		proxy = nil
	}
	t := &http.Transport{
		Proxy:                 proxy,
		DialContext:           p.Dialer(10*time.Second, 30*time.Second),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   64, // deliveries to one destination run concurrently
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       cfg,
	}
	if transports.m == nil {
		transports.m = make(map[transportKey]*http.Transport)
	}
	transports.m[key] = t
	return t, nil
}

// load builds the tls.Config, naming the file that fails.
func (tc TLSConfig) load() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: tc.InsecureSkipVerify}
	if tc.CAFile != "" {
		pem, err := os.ReadFile(tc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CAFile %q: no PEM certificate in the file", tc.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case tc.CertFile != "" && tc.KeyFile != "":
		pair, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CertFile %q with KeyFile %q: %w", tc.CertFile, tc.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case tc.CertFile != "" || tc.KeyFile != "":
		return nil, errors.New("TLS CertFile and KeyFile must be set together for mutual TLS")
	}
	return cfg, nil
}
