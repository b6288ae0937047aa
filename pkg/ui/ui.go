package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	cliptext "github.com/auditbus/auditbus/bus/clip"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the page is served under.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every answer: nothing but this
// origin's own files, no inline script or style, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// pages are the paths under Prefix that answer the page itself; the
// page's script reads the rest of the path.
var pages = []string{"", "events", "deadletters", "replays"}

// asset is one embedded file, ready to serve.
type asset struct {
	body, gz []byte
	ctype    string
	etag     string
}

// Handler serves the page and its assets under Prefix. Unknown paths
// answer 404.
func Handler() http.Handler {
	files, err := load()
	if err != nil {
		// The files are compiled in: failing here is a broken build.
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		name := "index.html"
		if a, ok := strings.CutPrefix(rest, "assets/"); ok {
			name = a
		} else if !isPage(rest) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, "no page at %q; the explorer starts at %s\n", clip(r.URL.Path), Prefix)
			return
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.serve(w, r)
	})
}

// isPage says whether rest (the path after Prefix) is one of the page's
// own paths: a section, or events/{id}.
func isPage(rest string) bool {
	for _, p := range pages {
		if rest == p {
			return true
		}
	}
	id, ok := strings.CutPrefix(rest, "events/")
	return ok && id != "" && !strings.Contains(id, "/")
}

func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Add("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// load reads every embedded file, keyed by its path under assets/, with
// a gzip copy of those that shrink.
func load() (map[string]*asset, error) {
	files := map[string]*asset{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a := &asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: contentType(p)}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		if buf.Len() < len(b) {
			a.gz = buf.Bytes()
		}
		files[strings.TrimPrefix(p, "assets/")] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: read the embedded assets: %w", err)
	}
	return files, nil
}

// CompressedSize is the size in bytes of every embedded file as served to
// a browser that accepts gzip.
func CompressedSize() (int, error) {
	files, err := load()
	n := 0
	for _, a := range files {
		if a.gz != nil {
			n += len(a.gz)
		} else {
			n += len(a.body)
		}
	}
	return n, err
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case "":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// clip shortens what a client sent before it is echoed.
func clip(s string) string { return cliptext.Text(s, 200) }
