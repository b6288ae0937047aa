package e2e_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestExplorer drives the page in Chromium against a real daemon with
// auth on: the token prompt, a read-only token that cannot redrive, the
// overview chart, a search by type, the trail of an event delivered to
// three destinations and dead-lettered at a fourth, event data that
// tries to run script, and a redrive that completes. The daemon has a
// signer registry, so its received entries record a signature result (in
// auditbus-leaf-v2 leaves, which the badge verifies beside v1 ones) and
// the timeline shows it.
func TestExplorer(t *testing.T) {
	ctx := browser(t)
	var hookUp atomic.Bool
	var hooked atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hookUp.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		hooked.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	_, daemonURL := startDaemon(t, `
routes:
  - name: orders
    source: {transport: mem, topic: orders}
    destinations:
      - {transport: mem, topic: billing}
      - {transport: mem, topic: archive}
      - {transport: mem, topic: search}
      - {name: hook, webhook: {url: "`+hook.URL+`/in", timeout: 2s}}
    retry: {max_attempts: 2, initial_backoff: 1ms, max_backoff: 2ms}
    circuit_breaker: {failures: 100}
    dead_letter: {transport: mem, topic: dlq}
`, "AUDITBUS_SIGNERS_FILE="+signersFile(t))
	// The browser reaches the daemon through a proxy that can answer 503
	// for the API, as a failing daemon would.
	var failing atomic.Bool
	target, _ := url.Parse(daemonURL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	// With tamper set, the proxy changes a destination in the answers
	// about events, as a store changed behind the ledger's back would.
	var tamper atomic.Bool
	proxy.ModifyResponse = func(resp *http.Response) error {
		if !tamper.Load() || !strings.HasPrefix(resp.Request.URL.Path, "/v1/events/") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		b = bytes.ReplaceAll(b, []byte(`"mem:archive"`), []byte(`"mem:elsewhere"`))
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && strings.HasPrefix(r.URL.Path, "/v1/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"the audit store did not answer"}}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	base := front.URL
	writer := tokenWith(t, "events:write")
	for _, id := range []string{"o-1", "o-2", "o-3"} {
		post(t, base, writer, "topic=orders", map[string]string{"ce-id": id, "ce-source": "/shop",
			"ce-type": "com.example.order.created", "ce-subject": "order " + id, "Content-Type": "application/json"}, `{"total":3,"items":["a","b"]}`)
	}
	for _, id := range []string{"u-1", "u-2"} {
		post(t, base, writer, "", map[string]string{"ce-id": id, "ce-source": "/accounts", "ce-type": "com.example.user.signup",
			"Content-Type": "application/json"}, `{"user":"`+id+`"}`)
	}
	const xss = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">`
	post(t, base, writer, "", map[string]string{"ce-id": "x-1", "ce-source": "/evil", "ce-type": "com.example.xss",
		"ce-subject": xss, "Content-Type": "text/html"}, xss)

	conflict := map[string]string{"ce-id": "p-1", "ce-source": "/bank", "ce-type": "com.example.transfer", "Content-Type": "application/json"}
	post(t, base, writer, "", conflict, `{"amount":100,"to":"alice"}`)
	conflict["ce-time"] = "2020-01-01T00:00:00Z"
	post(t, base, writer, "", conflict, `{"amount":999999,"to":"mallory"}`)

	readOnly := tokenWith(t, "audit:read")
	operator := tokenWith(t, "audit:read replay:write")
	enterToken := func(tok string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.WaitVisible(css("#auth-token")),
			chromedp.SendKeys(css("#auth-token"), tok),
			chromedp.Click(css("#auth-form button")),
			chromedp.WaitNotVisible(css("#auth")),
		)
	}

	t.Run("no token gets the prompt", func(t *testing.T) {
		do(t, ctx, "open /", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#auth-form")))
		if path := eval[string](t, ctx, `location.pathname`); path != "/ui/" {
			t.Errorf("GET / led to %s, want /ui/", path)
		}
		shot(t, ctx, "auth-prompt")
		do(t, ctx, "a bad token gets the prompt again", chromedp.SendKeys(css("#auth-token"), "not-a-token"),
			chromedp.Click(css("#auth-form button")), chromedp.WaitVisible(css("#auth-error")))
	})

	t.Run("a read-only token cannot redrive", func(t *testing.T) {
		do(t, ctx, "dead letters with a read-only token", enterToken(readOnly),
			chromedp.Navigate(base+"/ui/deadletters"), chromedp.WaitVisible(css("button.redrive")))
		if !eval[bool](t, ctx, `document.querySelector("button.redrive").disabled && !!document.getElementById("redrive-denied")`) {
			t.Error("the redrive button is enabled for a token with audit:read alone")
		}
		shot(t, ctx, "deadletters-read-only")
		do(t, ctx, "forget the token", chromedp.Click(css("#signout")), enterToken(operator))
	})

	t.Run("the overview charts the posted events", func(t *testing.T) {
		do(t, ctx, "overview", chromedp.Navigate(base+"/ui/"),
			waitJS(`document.querySelector("#chart")?.dataset.total === "7" && !!document.querySelector("#chart canvas")`),
			waitJS(`document.querySelector('[data-total="versions"] .n')?.textContent === "7"`),
			waitJS(`document.querySelector('[data-total="deadlettered"] .n')?.textContent === "3"`))
		if types := eval[string](t, ctx, `document.querySelector("#chart").dataset.types`); types != "com.example.order.created com.example.transfer com.example.user.signup com.example.xss" {
			t.Errorf("chart types %q", types)
		}
		shot(t, ctx, "overview")

		do(t, ctx, "overview by outcome", chromedp.SetValue(css("#by"), "outcome"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("by").dispatchEvent(new Event("change"))`),
			waitJS(`location.search.includes("by=outcome") && document.querySelector("#chart")?.dataset.total === "15" && !!document.querySelector("#chart canvas")`))
		if kinds := eval[string](t, ctx, `document.querySelector("#chart").dataset.types`); kinds != "deadlettered delivered received" {
			t.Errorf("outcomes charted %q, want the route's 3 receptions, 9 deliveries and 3 dead letters", kinds)
		}
		shot(t, ctx, "overview-by-outcome")
	})

	t.Run("a search by type lists exactly the posted events", func(t *testing.T) {
		do(t, ctx, "search", chromedp.Navigate(base+"/ui/events?type=com.example.order.*"), chromedp.WaitVisible(css("#results-table")))
		ids := eval[[]string](t, ctx, `[...document.querySelectorAll("#results-table tbody tr")].map(r => r.dataset.source + " " + r.dataset.id)`)
		if strings.Join(ids, ",") != "/shop o-1,/shop o-2,/shop o-3" {
			t.Errorf("search by type listed %q", ids)
		}
		if typ := eval[string](t, ctx, `document.getElementById("q-type").value`); typ != "com.example.order.*" {
			t.Errorf("type field %q", typ)
		}
		shot(t, ctx, "search")
		do(t, ctx, "a bad parameter", chromedp.Navigate(base+"/ui/events?from=yesterday"),
			waitJS(`document.getElementById("err-from")?.textContent !== ""`))
		if msg := eval[string](t, ctx, `document.getElementById("err-from").textContent`); !strings.Contains(msg, `"from"`) || !strings.Contains(msg, "RFC 3339") {
			t.Errorf("error next to from: %q", msg)
		}
		do(t, ctx, "an empty result", chromedp.Navigate(base+"/ui/events?type=com.example.nothing"),
			chromedp.WaitVisible(css("#no-results")))
		do(t, ctx, "paging", chromedp.Navigate(base+"/ui/events?limit=2"), chromedp.WaitVisible(css("#next-page")),
			chromedp.Click(css("#next-page")), chromedp.WaitVisible(css("#first-page")))
		if search := eval[string](t, ctx, `location.search`); !strings.Contains(search, "cursor=") {
			t.Errorf("the second page is at %q, want the API's cursor in the link", search)
		}
	})

	t.Run("the detail page shows the trail", func(t *testing.T) {
		// The badge checks the entries against the latest checkpoint, made
		// within a second of them: until then it says they are newer.
		var verify string
		deadline := time.Now().Add(20 * time.Second)
		for {
			do(t, ctx, "detail", chromedp.Navigate(base+"/ui/events/o-1?source=%2Fshop"),
				chromedp.WaitVisible(css("#trail")), waitJS(`document.querySelector("#verify [data-verified]") !== null`))
			verify = eval[string](t, ctx, `document.getElementById("verify").textContent`)
			if !strings.Contains(verify, "newer than the latest checkpoint") || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		kinds := eval[[]string](t, ctx, `[...document.querySelectorAll("#trail li")].filter(li => li.dataset.destination).map(li => li.dataset.kind + " " + li.dataset.destination).sort()`)
		want := "deadlettered hook,delivered mem:archive,delivered mem:billing,delivered mem:search"
		if strings.Join(kinds, ",") != want {
			t.Errorf("trail %q, want %q", kinds, want)
		}
		sigs := eval[[]string](t, ctx, `[...document.querySelectorAll("#trail li [data-signature]")].map(e => e.textContent)`)
		if strings.Join(sigs, ",") != "signature unsigned,signature unsigned" {
			t.Errorf("signature results in the timeline %q, want the two receptions' unsigned", sigs)
		}
		if !strings.HasPrefix(verify, "verified all 6 entries are in the latest checkpoint") {
			t.Errorf("verification badge %q, want the 6 entries verified", verify)
		}
		shot(t, ctx, "detail")

		tamper.Store(true)
		defer tamper.Store(false)
		do(t, ctx, "detail of a changed answer", chromedp.Navigate(base+"/ui/events/o-1?source=%2Fshop"),
			waitJS(`document.querySelector("#verify [data-verified]") !== null`))
		if verify := eval[string](t, ctx, `document.getElementById("verify").textContent`); !strings.Contains(verify, "not verified") || !strings.Contains(verify, "does not match the checkpoint") {
			t.Errorf("badge of a changed entry %q, want it not verified", verify)
		}
		shot(t, ctx, "detail-tampered")
	})

	t.Run("versions in conflict show their difference", func(t *testing.T) {
		do(t, ctx, "detail of a conflict", chromedp.Navigate(base+"/ui/events/p-1?source=%2Fbank"), chromedp.WaitVisible(css("pre.diff")))
		diff := eval[[]string](t, ctx, `[...document.querySelectorAll("pre.diff .add, pre.diff .del")].map(e => e.textContent)`)
		want := `-   "amount": 100,,-   "to": "alice",+   "amount": 999999,,+   "to": "mallory"`
		if strings.Join(diff, ",") != want {
			t.Errorf("difference %q, want %q", diff, want)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll("section.version.conflict").length`); n != 1 {
			t.Errorf("%d versions marked as conflicts, want 1", n)
		}
		shot(t, ctx, "conflict")
	})

	t.Run("a failing daemon shows a banner and the page stays usable", func(t *testing.T) {
		failing.Store(true)
		do(t, ctx, "search while the API fails", chromedp.Click(css(`a[data-nav="events"]`)), chromedp.WaitVisible(css("#banner")))
		if msg := eval[string](t, ctx, `document.getElementById("banner").textContent`); !strings.Contains(msg, "503") {
			t.Errorf("banner %q", msg)
		}
		shot(t, ctx, "banner")
		failing.Store(false)
		do(t, ctx, "search again", chromedp.Click(css(`#search-form button[type="submit"]`)),
			chromedp.WaitVisible(css("#results-table")), chromedp.WaitNotVisible(css("#banner")))
	})

	t.Run("event data that holds script renders as text", func(t *testing.T) {
		do(t, ctx, "detail of the payload", chromedp.Navigate(base+"/ui/events/x-1?source=%2Fevil"), chromedp.WaitVisible(css("#data-0")))
		if shown := eval[string](t, ctx, `document.getElementById("data-0").textContent`); shown != xss {
			t.Errorf("data shown as %q, want the text %q", shown, xss)
		}
		imgs := eval[int](t, ctx, `document.querySelectorAll("main img, main script").length`)
		do(t, ctx, "search listing the payload", chromedp.Navigate(base+"/ui/events?type=com.example.xss"), chromedp.WaitVisible(css("#results-table")))
		imgs += eval[int](t, ctx, `document.querySelectorAll("main img, main script").length`)
		if ran := eval[string](t, ctx, `String(window.__xss)`); ran != "undefined" || imgs != 0 {
			t.Errorf("the payload ran (window.__xss = %s) or made %d elements", ran, imgs)
		}
		shot(t, ctx, "xss-as-text")
	})

	t.Run("a redrive creates a job that completes", func(t *testing.T) {
		hookUp.Store(true)
		do(t, ctx, "redrive", chromedp.Navigate(base+"/ui/deadletters"),
			chromedp.WaitVisible(css(`button.redrive[data-destination="hook"]`)),
			waitJS(`!document.querySelector('button.redrive[data-destination="hook"]').disabled`),
			chromedp.Click(css(`button.redrive[data-destination="hook"]`)),
			waitJS(`document.querySelector(".redrive-result a") !== null`),
			chromedp.Click(css(".redrive-result a")),
			waitJS(`document.querySelector('#jobs tr[data-state="done"]') !== null`))
		if n := hooked.Load(); n != 3 {
			t.Errorf("the webhook got %d events, want the 3 dead-lettered", n)
		}
		shot(t, ctx, "replays")
	})
}
