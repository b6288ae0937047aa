package e2e_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus/signing"
	"github.com/auditbus/auditbus/pkg/daemon"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
)

// secret is the HS256 key of the test daemons.
const secret = "0123456789abcdef0123456789abcdef"

// screenshotDir is where the browser tests leave their screenshots
// (ignored by git; AUDITBUS_UI_SCREENSHOTS moves it).
func screenshotDir(t testing.TB) string {
	dir := os.Getenv("AUDITBUS_UI_SCREENSHOTS")
	if dir == "" {
		dir = "screenshots"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startDaemon runs a daemon in this process on a loopback port with the
// mem transport, SQLite and HS256 auth, with routes (a routes file's
// text, "" for none) and extra variables ("NAME=value"); it returns its
// base URL.
func startDaemon(t testing.TB, routes string, env ...string) (*daemon.Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	path := ""
	if routes != "" {
		path = filepath.Join(dir, "routes.yaml")
		if err := os.WriteFile(path, []byte(routes), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{
		"AUDITBUS_LISTEN": "127.0.0.1:0", "AUDITBUS_DATA_DIR": filepath.Join(dir, "data"), "AUDITBUS_ROUTES": path,
		"AUDITBUS_TRANSPORTS": "mem", "AUDITBUS_STORE": "sqlite", "AUDITBUS_AUTH_HS256_SECRET": secret,
		"AUDITBUS_SQLITE_RETENTION": "",
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	cfg, err := daemon.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- d.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("close the daemon: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return d, "http://" + d.Addr().String()
}

// tokenWith signs a token with the space-separated scopes.
func tokenWith(t *testing.T, scopes string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "explorer-test", "scope": scopes, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// post sends one event in binary mode to POST /v1/events?query and wants
// 202.
func post(t *testing.T, base, token, query string, attrs map[string]string, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events?"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("ce-specversion", "1.0")
	for k, v := range attrs {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events?%s: %d %s, want 202", query, resp.StatusCode, b)
	}
}

// browser starts Debian's Chromium headless, or skips the test when it is
// not installed (fails under CI=true: deploy/test-services.sh installs it).
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (CI=true): run `bash deploy/test-services.sh up` as root, which installs Debian's chromium")
		}
		t.Skip("chromium is not installed; `bash deploy/test-services.sh up` as root installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium at %s: %v", path, err)
	}
	return ctx
}

// do runs steps with a deadline, failing the test with what.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates expr in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls the page until expr is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(25*time.Second))
}

// css names the first element matching a CSS selector.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// shot saves a full-page screenshot as name.png in the screenshot
// directory.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signersFile writes a signer registry of one new Ed25519 key.
func signersFile(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := signing.MarshalPublicKey(pub)
	if err := os.WriteFile(filepath.Join(dir, "shop.pub"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "signers.yaml")
	if err := os.WriteFile(path, []byte("signers:\n  - {key_id: shop, public_key_file: shop.pub, sources: [/shop/], types: [com.example.]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
