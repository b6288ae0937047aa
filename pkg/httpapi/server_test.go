package httpapi_test

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
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// healthz, readyz and metrics answer without a token; readyz reports the
// check's error, and a check that hangs is cut off.
func TestHealthReadyMetrics(t *testing.T) {
	var readyErr atomic.Pointer[error]
	var hanging atomic.Bool
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	e := newEnv(t, func(o *httpapi.Options) {
		o.Ready = func(ctx context.Context) error {
			if hanging.Load() {
				<-hang // ignores ctx on purpose
			}
			if p := readyErr.Load(); p != nil {
				return *p
			}
			return nil
		}
	})
	if r := e.do(t, req{path: "/healthz"}); r.status != http.StatusOK || string(r.body) != `{"status":"ok"}`+"\n" {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}
	if r := e.do(t, req{path: "/readyz"}); r.status != http.StatusOK || string(r.body) != `{"status":"ready"}`+"\n" {
		t.Errorf("readyz: %d %s", r.status, r.body)
	}
	var down error = &httpapi.NotReadyError{What: "the audit store does not answer", Err: errors.New("dial 10.0.0.7:9000: connection refused")}
	readyErr.Store(&down)
	b := wantError(t, e.do(t, req{path: "/readyz"}), http.StatusServiceUnavailable, "not_ready")
	if !strings.Contains(b.Error.Message, "audit store") || strings.Contains(b.Error.Message, "10.0.0.7") {
		t.Errorf("readyz does not say what, or says the cause: %s", b.Error.Message)
	}
	readyErr.Store(nil)
	hanging.Store(true)
	b = wantError(t, e.do(t, req{path: "/readyz"}), http.StatusServiceUnavailable, "not_ready")
	if !strings.Contains(b.Error.Message, "did not answer within") {
		t.Errorf("readyz of a hanging check: %s", b.Error.Message)
	}

	e.post(t, req{header: structured, body: `{"specversion":"1.0","id":"m","source":"/m","type":"com.example.m"}`}, 1)
	e.do(t, req{path: "/nowhere"})
	r := e.do(t, req{path: "/metrics"})
	if r.status != http.StatusOK {
		t.Fatalf("metrics: %d %s", r.status, r.body)
	}
	for _, s := range []string{
		`auditbus_http_requests_total{code="202",handler="POST /v1/events"} 1`,
		`auditbus_http_requests_total{code="503",handler="GET /readyz"} 2`,
		`auditbus_http_requests_total{code="404",handler="/"} 1`,
		`auditbus_http_request_seconds_count{handler="GET /healthz"} 1`,
	} {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("metrics lack %s", s)
		}
	}
}

// New names the option at fault.
func TestNewRefusesBadOptions(t *testing.T) {
	e := newEnv(t)
	ok := httpapi.Options{Store: e.store, Audit: e.writer, Transport: e.mem, TransportName: "mem"}
	tests := []struct {
		name string
		edit func(*httpapi.Options)
		want string
	}{
		{"no store", func(o *httpapi.Options) { o.Store = nil }, "Options.Store"},
		{"no audit", func(o *httpapi.Options) { o.Audit = nil }, "Options.Audit"},
		{"no transport", func(o *httpapi.Options) { o.Transport = nil }, "Options.Transport "},
		{"no transport name", func(o *httpapi.Options) { o.TransportName = "" }, "Options.TransportName"},
		{"negative body limit", func(o *httpapi.Options) { o.MaxBodyBytes = -1 }, "Options.MaxBodyBytes"},
		{"bad default topic", func(o *httpapi.Options) { o.DefaultTopic = "a b" }, "Options.DefaultTopic"},
		{"registerer without gatherer", func(o *httpapi.Options) { o.Registerer = registererOnly{prometheus.NewRegistry()} }, "Options.Gatherer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			_, err := httpapi.New(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
	// Two servers on one registry share its HTTP metrics.
	reg := prometheus.NewRegistry()
	for range 2 {
		o := ok
		o.Registerer = reg
		if _, err := httpapi.New(o); err != nil {
			t.Fatal(err)
		}
	}
}

// registererOnly hides the Gatherer of a registry.
type registererOnly struct{ prometheus.Registerer }

// Serve runs the API over TLS on a listener; Shutdown ends it and Serve
// returns nil.
func TestServeTLSAndShutdown(t *testing.T) {
	e := newEnv(t)
	cert, key, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.api.Serve(ln, cert, key) }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || res.TLS == nil {
		t.Fatalf("healthz over TLS: %d, TLS %v", res.StatusCode, res.TLS != nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.api.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}

	// A certificate without its key is refused before serving.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.api.Serve(ln2, cert, ""); err == nil || !strings.Contains(err.Error(), "key file") {
		t.Errorf("Serve with a certificate and no key: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "auditbus test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}
