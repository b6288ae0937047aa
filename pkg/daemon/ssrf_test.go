package daemon_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/auditbus/auditbus/pkg/daemon"
	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a DNS server on a loopback UDP port that answers every A
// question with the address its answer holds at the time, and AAAA
// questions with nothing: a name that can be rebound between two
// look-ups.
type dnsServer struct {
	answer   atomic.Value // netip.Addr
	conn     net.PacketConn
	resolver *net.Resolver // asks this server
}

func startDNS(t *testing.T, first netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: pc}
	s.answer.Store(first)
	go s.serve()
	t.Cleanup(func() { _ = pc.Close() })
	// The daemon's webhook look-ups go to this server (its Config.Resolver),
	// never the process-wide net.DefaultResolver, which other goroutines read.
	s.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	return s
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		_ = b.StartQuestions()
		_ = b.Question(q)
		_ = b.StartAnswers()
		if q.Type == dnsmessage.TypeA {
			a := s.answer.Load().(netip.Addr).As4()
			_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: a})
		}
		msg, err := b.Finish()
		if err == nil {
			_, _ = s.conn.WriteTo(msg, from)
		}
	}
}

// hitCounter is a webhook that counts what reaches it and answers status
// with body.
func hitCounter(t *testing.T, status int, body string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestSSRFWebhookEgress starts replays to webhooks through the API of a
// running daemon: the cloud metadata addresses, loopback (by address, by
// name, by a name a DNS server resolves to it, and by a name rebound to it
// after the request was accepted), and a host AUDITBUS_WEBHOOK_ALLOW
// names. Nothing denied is ever connected to, the refusals name the
// field and the policy, and job errors carry the status code and a fixed
// message, never the target's body or the kind of network error.
func TestSSRFWebhookEgress(t *testing.T) {
	dns := startDNS(t, netip.MustParseAddr("127.0.0.1"))
	hook, hits := hitCounter(t, http.StatusOK, "")
	_, port, _ := net.SplitHostPort(hook.Listener.Addr().String())

	l := startLiveConfig(t, "", func(c *daemon.Config) { c.Resolver = dns.resolver })
	l.storeEvents(t, "/ssrf", 3)
	tok := l.tokenWith(t, "replay:write audit:read")
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://169.254.170.2/v2/credentials",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://metadata.google.internal/computeMetadata/v1/",
		"http://100.100.100.200/latest/meta-data/",
		"http://10.0.0.1/",
		"http://127.0.0.1:" + port + "/",
		"http://[::1]:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://0.0.0.0:" + port + "/",
		"http://localhost:" + port + "/",
		"http://inside.example.test:" + port + "/", // resolves to 127.0.0.1
	} {
		for _, dry := range []string{"", "?dry_run=true"} {
			code, _, b := l.call(t, http.MethodPost, "/v1/replays"+dry, tok, replayBody(u))
			if code != http.StatusBadRequest || !strings.Contains(string(b), "destination.webhook") || !strings.Contains(string(b), "egress policy") {
				t.Errorf("replay%s to %s: %d %s, want 400 naming destination.webhook and the egress policy", dry, u, code, b)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback webhook was reached %d times", n)
	}

	// Rebinding: the name resolves to a public address when the request
	// is checked, to loopback when the job connects.
	dns.answer.Store(netip.MustParseAddr("203.0.113.7"))
	var j secJob
	l.mustCall(t, http.MethodPost, "/v1/replays", tok, replayBody("http://rebound.example.test:"+port+"/"), http.StatusAccepted, &j)
	dns.answer.Store(netip.MustParseAddr("127.0.0.1"))
	j = l.waitJob(t, tok, j.ID)
	if n := hits.Load(); n != 0 || j.Progress.Done != 0 {
		t.Fatalf("rebound name: the loopback webhook was reached %d times, %d events done", n, j.Progress.Done)
	}
	if !strings.Contains(j.Error+messages(j), "egress policy") {
		t.Errorf("rebound name: job %+v does not say the egress policy refused it", j)
	}
}

// TestSSRFAllowedHostAndOpaqueErrors: with AUDITBUS_WEBHOOK_ALLOW naming
// a host, replays reach it; a job's errors name the status code, never
// the body the target answered; a redirect is not followed nor its
// Location told; and a refused port reads like any other failure to
// connect.
func TestSSRFAllowedHostAndOpaqueErrors(t *testing.T) {
	hook, hits := hitCounter(t, http.StatusOK, "")
	secret, secretHits := hitCounter(t, http.StatusForbidden, "SECRET-METADATA-TOKEN abc123")
	_, port, _ := net.SplitHostPort(hook.Listener.Addr().String())
	_, secretPort, _ := net.SplitHostPort(secret.Listener.Addr().String())

	l := startLive(t, "", "AUDITBUS_WEBHOOK_ALLOW=localhost")
	l.storeEvents(t, "/ssrf", 3)
	tok := l.tokenWith(t, "replay:write audit:read")

	var j secJob
	l.mustCall(t, http.MethodPost, "/v1/replays", tok, replayBody("http://localhost:"+port+"/"), http.StatusAccepted, &j)
	if j = l.waitJob(t, tok, j.ID); j.State != "done" || j.Progress.Done != 3 || hits.Load() != 3 {
		t.Fatalf("allowed host: job %+v, %d hits; want done with 3 events delivered", j, hits.Load())
	}
	// Only the host named is allowed, not its address.
	if code, _, b := l.call(t, http.MethodPost, "/v1/replays", tok, replayBody("http://127.0.0.1:"+port+"/")); code != http.StatusBadRequest {
		t.Errorf("127.0.0.1 with only localhost allowed: %d %s, want 400", code, b)
	}

	l.mustCall(t, http.MethodPost, "/v1/replays", tok, replayBody("http://localhost:"+secretPort+"/"), http.StatusAccepted, &j)
	j = l.waitJob(t, tok, j.ID)
	if secretHits.Load() == 0 || j.Progress.Failed == 0 {
		t.Fatalf("refusing webhook: job %+v, %d hits", j, secretHits.Load())
	}
	if all := j.Error + messages(j); strings.Contains(all, "SECRET") || !strings.Contains(all, "403") {
		t.Errorf("job errors %q: want the status 403 and not the body", all)
	}

	// A redirect is never followed, even to a host the policy allows, and
	// the job does not say where it pointed.
	inner, innerHits := hitCounter(t, http.StatusOK, "")
	_, innerPort, _ := net.SplitHostPort(inner.Listener.Addr().String())
	to := "http://localhost:" + innerPort + "/SECRET-LOCATION"
	redirect := httptest.NewServer(http.RedirectHandler(to, http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	_, redirectPort, _ := net.SplitHostPort(redirect.Listener.Addr().String())
	l.mustCall(t, http.MethodPost, "/v1/replays", tok, replayBody("http://localhost:"+redirectPort+"/"), http.StatusAccepted, &j)
	j = l.waitJob(t, tok, j.ID)
	if all := j.Error + messages(j); innerHits.Load() != 0 || strings.Contains(all, "SECRET") || !strings.Contains(all, "307") {
		t.Errorf("redirecting webhook: %d hits where it pointed, job errors %q; want none, the status 307 and not the Location", innerHits.Load(), all)
	}

	closed := freeAddr(t)
	_, closedPort, _ := net.SplitHostPort(closed)
	l.mustCall(t, http.MethodPost, "/v1/replays", tok, replayBody("http://localhost:"+closedPort+"/"), http.StatusAccepted, &j)
	j = l.waitJob(t, tok, j.ID)
	if all := j.Error + messages(j); strings.Contains(all, "refused") || !strings.Contains(all, "no answer") {
		t.Errorf("closed port: job errors %q: want a fixed message, not the network error", all)
	}
}

func messages(j secJob) string {
	var b strings.Builder
	for _, e := range j.Errors {
		b.WriteString(e.Message)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestSSRFDenyReachesRoutes: AUDITBUS_WEBHOOK_DENY holds for the routes
// file's webhooks too, which may otherwise reach internal hosts: a route
// naming a denied address does not start, and one naming a host that
// resolves to a denied address dead-letters without connecting.
func TestSSRFDenyReachesRoutes(t *testing.T) {
	hook, hits := hitCounter(t, http.StatusOK, "")
	_, port, _ := net.SplitHostPort(hook.Listener.Addr().String())
	routes := func(url string) string {
		return `
routes:
  - name: payments
    source: {transport: mem, topic: payments}
    destinations:
      - {name: hook, webhook: {url: "` + url + `", timeout: 2s}}
    retry: {max_attempts: 2, initial_backoff: 1ms, max_backoff: 2ms}
    dead_letter: {transport: mem, topic: dlq}
`
	}
	deny := "AUDITBUS_WEBHOOK_DENY=127.0.0.0/8,::1"

	dir := t.TempDir()
	path := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(path, []byte(routes("http://127.0.0.1:"+port+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := daemon.Start(context.Background(), liveConfig(t, dir, path, deny), slog.New(slog.DiscardHandler)); err == nil {
		_ = d.Close(context.Background())
		t.Error("a route naming a denied address started")
	} else if !strings.Contains(err.Error(), "AUDITBUS_WEBHOOK_DENY") {
		t.Errorf("start with a route naming a denied address: %v; want an error naming AUDITBUS_WEBHOOK_DENY", err)
	}

	l := startLive(t, routes("http://localhost:"+port+"/"), deny)
	l.post(t, "topic=payments", map[string]string{"ce-id": "pay-1", "ce-source": "/pay", "ce-type": "com.example.payment",
		"Content-Type": "application/json"}, `{"amount":5}`)
	items := l.versions(t, "/pay", "pay-1", 3)
	if msg := errorOf(t, items[0].Trail); hits.Load() != 0 || !strings.Contains(msg, "egress policy") {
		t.Errorf("a route to localhost with 127.0.0.0/8 denied: %d hits, dead-lettered with %q; want none and the egress policy", hits.Load(), msg)
	}
}
