package ui_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditbus/auditbus/pkg/ui"
)

// Every path of the page answers the page with the strict headers; the
// assets answer with their types; anything else is 404.
func TestHandlerPathsAndHeaders(t *testing.T) {
	h := ui.Handler()
	for _, c := range []struct {
		path, ctype string
		status      int
	}{
		{"/ui/", "text/html; charset=utf-8", 200},
		{"/ui/events", "text/html; charset=utf-8", 200},
		{"/ui/events/o-1", "text/html; charset=utf-8", 200},
		{"/ui/deadletters", "text/html; charset=utf-8", 200},
		{"/ui/replays", "text/html; charset=utf-8", 200},
		{"/ui/assets/app.js", "text/javascript; charset=utf-8", 200},
		{"/ui/assets/style.css", "text/css; charset=utf-8", 200},
		{"/ui/assets/vendor/uplot/LICENSE", "text/plain; charset=utf-8", 200},
		{"/ui/assets/nothing.js", "text/plain; charset=utf-8", 404},
		{"/ui/events/a/b", "text/plain; charset=utf-8", 404},
		{"/ui/admin", "text/plain; charset=utf-8", 404},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, c.path, nil))
		if w.Code != c.status || w.Header().Get("Content-Type") != c.ctype {
			t.Errorf("%s: %d %q, want %d %q", c.path, w.Code, w.Header().Get("Content-Type"), c.status, c.ctype)
		}
		if w.Header().Get("Content-Security-Policy") != ui.CSP || w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", c.path, w.Header())
		}
	}
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(ui.CSP, want) || strings.Contains(ui.CSP, "unsafe-inline") {
			t.Errorf("CSP %q lacks %s or allows inline code", ui.CSP, want)
		}
	}
}

// A browser that accepts gzip gets the compressed copy, the same bytes;
// a repeated request with the ETag gets 304.
func TestHandlerCompressesAndRevalidates(t *testing.T) {
	h := ui.Handler()
	get := func(hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/ui/assets/vendor/uplot/uPlot.esm.js", nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	plain := get(nil)
	gz := get(map[string]string{"Accept-Encoding": "gzip, br"})
	if gz.Header().Get("Content-Encoding") != "gzip" || gz.Body.Len() >= plain.Body.Len() {
		t.Fatalf("gzip answer: %v, %d bytes of %d", gz.Header(), gz.Body.Len(), plain.Body.Len())
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if !bytes.Equal(b, plain.Body.Bytes()) {
		t.Error("the gzip copy differs from the file")
	}
	if w := get(map[string]string{"If-None-Match": plain.Header().Get("ETag")}); w.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", w.Code)
	}
}

// The embedded assets stay under 500 KiB as a browser downloads them.
func TestAssetsSize(t *testing.T) {
	n, err := ui.CompressedSize()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded assets: %d bytes compressed", n)
	if n > 500<<10 {
		t.Errorf("embedded assets are %d bytes compressed, over 500 KiB", n)
	}
}

// No script of the page writes HTML from a string: every text goes
// through text nodes (dom.js), so event data cannot become markup.
func TestScriptsBuildNoHTMLFromStrings(t *testing.T) {
	files, _ := filepath.Glob("assets/*.js")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
	if len(files) < 5 {
		t.Errorf("found %d scripts under assets/", len(files))
	}
}

func ExampleHandler() {
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/ui/events?type=com.example.order.*")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	fmt.Println(resp.Header.Get("X-Content-Type-Options"))
	// Output:
	// 200 text/html; charset=utf-8
	// nosniff
}
