package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/daemon"
	"github.com/golang-jwt/jwt/v5"
)

// TestSmallLeaks checks, on a live daemon, that nothing a client or the
// configuration holds is echoed where it should not be: a malformed
// AMQP URL's password, a token sent without "Bearer", a huge parameter
// name or value, the store's error text on /readyz; that a scp element holding a
// space is one (invalid) scope; that auth without issuer and audience is
// warned about; and that audit.db is 0600.
func TestSmallLeaks(t *testing.T) {
	t.Run("malformed AMQP URL", func(t *testing.T) {
		for _, u := range []string{"amqp://guest:s3cretpw@localhost:bad/", "amqp://guest:s3cr%etpw@localhost:5672/", "amqp://guest:s3cretpw@local host:5672/"} {
			t.Setenv("AUDITBUS_TRANSPORTS", "amqp")
			t.Setenv("AUDITBUS_AMQP_URL", u)
			t.Setenv("AUDITBUS_DATA_DIR", t.TempDir())
			t.Setenv("AUDITBUS_LISTEN", "127.0.0.1:0")
			cfg, err := daemon.ConfigFromEnv()
			if err == nil {
				var d *daemon.Daemon
				if d, err = daemon.Start(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil {
					_ = d.Close(context.Background())
				}
			}
			if err == nil || strings.Contains(err.Error(), "s3cr") || !strings.Contains(err.Error(), "AUDITBUS_AMQP_URL") {
				t.Errorf("%s: %v; want an error naming AUDITBUS_AMQP_URL without the password", u, err)
			}
		}
	})

	dataDir := filepath.Join(t.TempDir(), "data")
	l := startLive(t, "", "AUDITBUS_DATA_DIR="+dataDir, "AUDITBUS_AUTH_ISSUER=", "AUDITBUS_AUTH_AUDIENCE=")

	t.Run("token without Bearer", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, l.base+"/v1/events", nil)
		req.Header.Set("Authorization", l.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(b)+resp.Header.Get("WWW-Authenticate"), l.token[:20]) {
			t.Errorf("%d %s: want 401 without the token", resp.StatusCode, b)
		}
	})
	t.Run("huge parameter name", func(t *testing.T) {
		code, _, b := l.call(t, http.MethodGet, "/v1/events?"+strings.Repeat("n", 40<<10)+"=1", l.tokenWith(t, "audit:read"), "")
		if code != http.StatusBadRequest || len(b) > 2048 {
			t.Errorf("%d, %d bytes: want a short 400", code, len(b))
		}
	})
	t.Run("long values are cut", func(t *testing.T) {
		// Names and values the daemon refuses, each 40 KB long: the
		// answer says what is wrong without echoing it whole.
		long := strings.Repeat("n", 40<<10)
		tok := l.tokenWith(t, "audit:read replay:write")
		for _, c := range []struct{ method, path, body string }{
			{http.MethodGet, "/v1/ledger?log=" + long, ""},
			{http.MethodGet, "/v1/ledger/checkpoint?log=" + long, ""},
			{http.MethodGet, "/v1/events/" + long, ""},
			{http.MethodGet, "/v1/" + long, ""},
			{http.MethodPost, "/v1/replays?dry_run=true", `{"filter":{},"destination":{"webhook":{"url":"` + long + `"}}}`},
			{http.MethodPost, "/v1/replays?dry_run=true", `{"filter":{},"destination":{"transport":"` + long + `","topic":"t"}}`},
			{http.MethodPost, "/v1/replays?dry_run=true", `{"filter":{},"destination":{"route":"` + long + `","destination":"d"}}`},
			{http.MethodPost, "/v1/replays?dry_run=true", `{"filter":{"outcome":"` + long + `"},"destination":{"transport":"mem","topic":"t"}}`},
			{http.MethodPost, "/v1/redrives", `{"route":"` + long + `"}`},
		} {
			code, _, b := l.call(t, c.method, c.path, tok, c.body)
			if code < 400 || len(b) > 2048 || !strings.Contains(string(b), `"error"`) {
				t.Errorf("%s %.60s %.60s: %d, %d bytes: want a short error", c.method, c.path, c.body, code, len(b))
			}
		}
	})
	t.Run("scp element with a space", func(t *testing.T) {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "tester", "scp": []string{"events:write audit:read"}, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte(liveSecret))
		if err != nil {
			t.Fatal(err)
		}
		if code, _, b := l.call(t, http.MethodGet, "/v1/events", tok, ""); code != http.StatusForbidden {
			t.Errorf("scp [\"events:write audit:read\"] on GET /v1/events: %d %s, want 403", code, b)
		}
	})
	t.Run("issuer and audience unchecked", func(t *testing.T) {
		if !strings.Contains(l.logs.String(), "AUDITBUS_AUTH_ISSUER and AUDITBUS_AUTH_AUDIENCE") {
			t.Error("no start-up warning about tokens accepted from any issuer for any audience")
		}
	})
	t.Run("audit.db mode", func(t *testing.T) {
		fi, err := os.Stat(filepath.Join(dataDir, "audit.db"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("audit.db has mode %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("readyz hides the store's error", func(t *testing.T) {
		// A daemon of its own, whose store is closed under it: every query
		// fails, and so does its drain, which this test does not check.
		logs := &lockedBuffer{}
		t.Setenv("AUDITBUS_DATA_DIR", t.TempDir())
		cfg, err := daemon.ConfigFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		d, err := daemon.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- d.Serve() }()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = d.Close(ctx)
			<-served
		}()
		if err := daemon.StoreOf(d).Close(); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + d.Addr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(b), "sinks") || strings.Contains(string(b), "closed") || !strings.Contains(string(b), "audit store") {
			t.Errorf("/readyz: %d %s; want 503 naming the audit store without its error", resp.StatusCode, b)
		}
		if !strings.Contains(logs.String(), `"error":"the audit store does not answer: sinks: closed"`) {
			t.Error("the log does not have the store's error")
		}
	})
}
