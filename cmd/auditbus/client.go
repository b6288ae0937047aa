package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// defaultURL is where auditbus serve listens by default.
const defaultURL = "http://127.0.0.1:8080"

// Environment variables of the client commands.
const (
	envURL   = "AUDITBUS_URL"
	envToken = "AUDITBUS_TOKEN"
)

// maxErrorBody bounds how much of an error response is read and shown.
const maxErrorBody = 64 << 10

// daemonFlags are the flags of the commands that talk to a daemon's HTTP API.
type daemonFlags struct {
	url, token string
	timeout    time.Duration
}

// register adds --url, --token and --timeout to fs.
func (d *daemonFlags) register(fs *flag.FlagSet) {
	def := os.Getenv(envURL)
	if def == "" {
		def = defaultURL
	}
	fs.StringVar(&d.url, "url", def, "base URL of the auditbus daemon (env "+envURL+")")
	fs.StringVar(&d.token, "token", "", "JWT bearer token (default: env "+envToken+")")
	fs.DurationVar(&d.timeout, "timeout", 30*time.Second, "how long one request to the daemon (or one publish to a transport) may take")
}

// client returns the HTTP client the flags describe. The error names the
// flag or variable at fault.
func (d *daemonFlags) client(set map[string]bool) (*client, error) {
	from := "--url"
	if !set["url"] && os.Getenv(envURL) != "" {
		from = envURL
	}
	u, err := url.Parse(d.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want an absolute http:// or https:// URL such as %s", from, d.url, defaultURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s %q: give the daemon's base URL, without a query or fragment", from, d.url)
	}
	if d.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: must be positive", d.timeout)
	}
	token := d.token
	if !set["token"] {
		token = os.Getenv(envToken)
	}
	token = strings.TrimSpace(token)
	return &client{base: u, token: token, http: &http.Client{Timeout: d.timeout}}, nil
}

// client calls a daemon's HTTP API.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// endpoint is the absolute URL of path under the base URL, with query q.
func (c *client) endpoint(q url.Values, path ...string) string {
	u := c.base.JoinPath(path...)
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends req with the bearer token. A response outside 2xx is returned
// as an *apiError; on success the caller closes the body.
func (c *client) do(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it repeats the method and URL
		}
		return nil, fmt.Errorf("%s %s: %w (is auditbus serve running at --url or %s?)", req.Method, redactURL(req.URL), err, envURL)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &apiError{method: req.Method, url: redactURL(req.URL), status: resp.StatusCode, body: bytes.TrimSpace(body)}
	var doc struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil {
		e.code = doc.Error.Code
	}
	return nil, e
}

// apiError is an answer outside 2xx from the daemon. Its text holds the
// status and the server's body verbatim.
type apiError struct {
	method, url string
	status      int
	body        []byte
	// code is the JSON error's code, when the body is auditbus's JSON error.
	code string
}

// Error shows the status and the body as the server sent it, with a hint
// for the statuses a user fixes on the command line.
func (e *apiError) Error() string {
	body := string(e.body)
	if body == "" {
		body = "(empty body)"
	}
	msg := fmt.Sprintf("%s %s: HTTP %d %s: %s", e.method, e.url, e.status, http.StatusText(e.status), body)
	switch {
	case e.status == http.StatusUnauthorized:
		msg += "\nhint: pass a JWT with --token or " + envToken
	case e.status == http.StatusForbidden:
		msg += "\nhint: the token lacks the scope this call needs (events:write to publish, audit:read to query and follow replays, replay:write with audit:read to start replays, replay:write to cancel them)"
	case e.code == "" && (e.status == http.StatusNotFound || e.status == http.StatusMethodNotAllowed):
		msg += "\nhint: is --url (or " + envURL + ") the address of an auditbus daemon?"
	}
	return msg
}

// isNotFound reports whether err is the daemon saying 404 in its JSON
// error shape (a 404 from something else is a wrong URL, not a missing
// event).
func isNotFound(err error) bool {
	var e *apiError
	return errors.As(err, &e) && e.status == http.StatusNotFound && e.code != ""
}

// redactURL is u without a password, for messages.
func redactURL(u *url.URL) string { return u.Redacted() }
