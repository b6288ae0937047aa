package cehttp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
)

func testEvent(id string) *event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/test")
	e.SetType("com.example.test")
	_ = e.SetData("text/plain", []byte("hello "+id))
	return &e
}

func newWebhook(t *testing.T, cfg WebhookConfig) *Webhook {
	t.Helper()
	w, err := NewWebhook(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWebhookDelivers(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evs, err := Decode(r, maxBody)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if string(evs[0].Data()) != "hello 1" {
			http.Error(w, "bad data", 400)
			return
		}
		got <- r
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	w := newWebhook(t, WebhookConfig{URL: srv.URL + "/hook", Headers: http.Header{
		"authorization": {"Bearer token"}, "X-Tenant": {"a", "b"}, "Ce-Id": {"ignored"},
	}})
	if err := w.Send(context.Background(), testEvent("1")); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.Header.Get("Authorization") != "Bearer token" || len(r.Header.Values("X-Tenant")) != 2 {
		t.Errorf("custom headers did not arrive: %v", r.Header)
	}
	if v := r.Header.Values("Ce-Id"); len(v) != 1 || v[0] != "1" {
		t.Errorf("Ce-Id = %q; the event's id must win", v)
	}
	if r.URL.Path != "/hook" || r.Method != http.MethodPost {
		t.Errorf("%s %s", r.Method, r.URL.Path)
	}
}

func TestWebhookFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if ra := r.URL.Query().Get("retry"); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte("  refused: " + strings.Repeat("x", 1000)))
	}))
	defer srv.Close()
	cases := []struct {
		path       string
		permanent  bool
		retryAfter time.Duration
	}{
		{"/400", true, 0},
		{"/401", true, 0},
		{"/404", true, 0},
		{"/413", true, 0},
		{"/408", false, 0},
		{"/429?retry=7", false, 7 * time.Second},
		{"/500", false, 0},
		{"/502", false, 0},
		{"/503?retry=120", false, 2 * time.Minute},
		{"/500?retry=9", false, 0}, // Retry-After counts on 429 and 503 only
		{"/302", true, 0},
		{"/307", true, 0},
	}
	for _, c := range cases {
		w := newWebhook(t, WebhookConfig{URL: srv.URL + c.path})
		err := w.Send(context.Background(), testEvent("1"))
		var se *SendError
		if !errors.As(err, &se) {
			t.Fatalf("%s: err = %v, want *SendError", c.path, err)
		}
		code, _ := strconv.Atoi(strings.SplitN(c.path[1:], "?", 2)[0])
		if se.StatusCode != code || IsPermanent(err) != c.permanent {
			t.Errorf("%s: status %d permanent %v, want %d %v", c.path, se.StatusCode, IsPermanent(err), code, c.permanent)
		}
		if d, ok := RetryAfter(err); d != c.retryAfter || ok != (c.retryAfter > 0) {
			t.Errorf("%s: RetryAfter = %v %v, want %v", c.path, d, ok, c.retryAfter)
		}
		if !strings.HasPrefix(se.Body, "refused: xxx") || !strings.HasSuffix(se.Body, "...") || len(se.Body) > snippetSize+3 {
			t.Errorf("%s: body snippet %q", c.path, se.Body)
		}
		if !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), strconv.Itoa(code)) {
			t.Errorf("%s: message %q does not name the URL and status", c.path, err)
		}
		if code == 302 && !strings.Contains(err.Error(), "/elsewhere") {
			t.Errorf("%s: message %q does not say where the redirect pointed", c.path, err)
		}
	}
}

func TestWebhookConnectionErrorsAreRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := newWebhook(t, WebhookConfig{URL: url}).Send(context.Background(), testEvent("1"))
	var se *SendError
	if !errors.As(err, &se) || se.StatusCode != 0 || se.Err == nil || IsPermanent(err) {
		t.Fatalf("err = %v; want a retryable *SendError with the connection error", err)
	}
}

func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	err := newWebhook(t, WebhookConfig{URL: srv.URL, Timeout: 50 * time.Millisecond}).Send(context.Background(), testEvent("1"))
	if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Fatalf("err = %v; want a retryable deadline error", err)
	}
}

func TestWebhookInvalidEventIsPermanent(t *testing.T) {
	w := newWebhook(t, WebhookConfig{URL: "http://127.0.0.1:1/"})
	e := testEvent("1")
	e.SetType("")
	err := w.Send(context.Background(), e)
	if !errors.Is(err, bus.ErrInvalidEvent) || !IsPermanent(err) {
		t.Fatalf("err = %v; want a permanent ErrInvalidEvent", err)
	}
	if IsPermanent(nil) || IsPermanent(errors.New("other")) {
		t.Fatal("nil and unknown errors must not be permanent")
	}
	var nilHook *Webhook
	if err := nilHook.Send(context.Background(), e); err == nil {
		t.Fatal("Send on a nil Webhook succeeded")
	}
}

// TestWebhookKeepsConnections: sequential deliveries, failed ones with a
// long body included, reuse one connection.
func TestWebhookKeepsConnections(t *testing.T) {
	var conns, n atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(500)
			_, _ = w.Write([]byte(strings.Repeat("e", 10000)))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	w := newWebhook(t, WebhookConfig{URL: srv.URL})
	for i := range 20 {
		err := w.Send(context.Background(), testEvent(strconv.Itoa(i)))
		if (i%2 == 1) != (err != nil) {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if c := conns.Load(); c != 1 {
		t.Fatalf("20 deliveries opened %d connections, want 1", c)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"-5":                            0,
		"30":                            30 * time.Second,
		" 2 ":                           2 * time.Second,
		"soon":                          0,
		"Wed, 01 May 2024 12:01:30 GMT": 90 * time.Second,
		"Wed, 01 May 2024 11:00:00 GMT": 0,
		"99999999999999999999":          0, // does not parse as int64
		"9999999999999":                 time.Duration(int64(1<<63-1)/int64(time.Second)) * time.Second,
	}
	for v, want := range cases {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestNewWebhookRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cfg  WebhookConfig
		want string
	}{
		{WebhookConfig{URL: ""}, "http"},
		{WebhookConfig{URL: "localhost:8080/x"}, "http"},
		{WebhookConfig{URL: "http://h/%zz"}, "URL"},
		{WebhookConfig{URL: "http://h/", Timeout: -time.Second}, "Timeout"},
		{WebhookConfig{URL: "http://h/", Headers: http.Header{"Bad Name": {"x"}}}, "header name"},
		{WebhookConfig{URL: "http://h/", Headers: http.Header{"X": {"a\r\nInjected: 1"}}}, "CR, LF"},
		{WebhookConfig{URL: "https://h/", TLS: TLSConfig{CAFile: filepath.Join(dir, "missing.pem")}}, "CAFile"},
		{WebhookConfig{URL: "https://h/", TLS: TLSConfig{CAFile: notPEM}}, "no PEM"},
		{WebhookConfig{URL: "https://h/", TLS: TLSConfig{CertFile: notPEM}}, "together"},
		{WebhookConfig{URL: "https://h/", TLS: TLSConfig{CertFile: notPEM, KeyFile: notPEM}}, "CertFile"},
	}
	for _, c := range cases {
		if _, err := NewWebhook(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want one naming %s", c.cfg, err, c.want)
		}
	}
	w, err := NewWebhook(WebhookConfig{URL: "https://user:secret@h/x"})
	if err != nil || strings.Contains(w.URL(), "secret") {
		t.Errorf("URL() = %q, %v; want the password hidden", w.URL(), err)
	}
}

func TestWebhooksShareTransports(t *testing.T) {
	a := newWebhook(t, WebhookConfig{URL: "http://a/"})
	b := newWebhook(t, WebhookConfig{URL: "http://b/", Timeout: time.Second})
	c := newWebhook(t, WebhookConfig{URL: "https://c/", TLS: TLSConfig{InsecureSkipVerify: true}})
	if a.client.Transport != b.client.Transport || a.client.Transport == c.client.Transport {
		t.Fatal("webhooks with the same TLS settings must share one transport, others not")
	}
	tr := a.client.Transport.(*http.Transport)
	if tr.MaxIdleConnsPerHost < 16 || tr.DisableKeepAlives {
		t.Fatalf("transport not tuned: MaxIdleConnsPerHost %d, keep-alives off %v", tr.MaxIdleConnsPerHost, tr.DisableKeepAlives)
	}
}

// pki is a throwaway CA with a server and a client certificate, as files.
type pki struct {
	caFile, certFile, keyFile string
	server                    tls.Certificate
	pool                      *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test " + strconv.Itoa(int(serial))},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := pki{caFile: write("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	srvDER, srvKey := issue(2, x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := issue(3, x509.ExtKeyUsageClientAuth)
	keyDER, _ := x509.MarshalECPrivateKey(cliKey)
	p.certFile = write("client.pem", "CERTIFICATE", cliDER)
	p.keyFile = write("client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

func TestWebhookMutualTLS(t *testing.T) {
	p := newPKI(t)
	var peer atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := Decode(r, maxBody); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		peer.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()

	mtls := newWebhook(t, WebhookConfig{URL: srv.URL, TLS: TLSConfig{CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile}})
	if err := mtls.Send(context.Background(), testEvent("1")); err != nil {
		t.Fatalf("mutual TLS delivery: %v", err)
	}
	if peer.Load() != "test 3" {
		t.Fatalf("server saw client certificate %v", peer.Load())
	}
	// Without the client certificate the server refuses the handshake;
	// without the CA the client refuses the server.
	for name, tc := range map[string]TLSConfig{
		"no client certificate": {CAFile: p.caFile},
		"unknown CA":            {CertFile: p.certFile, KeyFile: p.keyFile},
	} {
		err := newWebhook(t, WebhookConfig{URL: srv.URL, TLS: tc}).Send(context.Background(), testEvent("2"))
		var se *SendError
		if !errors.As(err, &se) || se.StatusCode != 0 {
			t.Errorf("%s: err = %v, want a connection error", name, err)
		}
	}
}

func TestWebhookInsecureSkipVerify(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	if err := newWebhook(t, WebhookConfig{URL: srv.URL}).Send(context.Background(), testEvent("1")); err == nil {
		t.Fatal("a self-signed server was trusted without InsecureSkipVerify")
	}
	w := newWebhook(t, WebhookConfig{URL: srv.URL, TLS: TLSConfig{InsecureSkipVerify: true}})
	if err := w.Send(context.Background(), testEvent("1")); err != nil {
		t.Fatalf("InsecureSkipVerify: %v", err)
	}
}
