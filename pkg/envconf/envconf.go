// Package envconf reads settings from AUDITBUS_* environment variables and
// reports every bad one at once, naming the variable, its value and what is
// accepted.
package envconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Reader reads variables that share a prefix, such as "AUDITBUS_KAFKA_",
// and collects errors; check Err once after reading.
type Reader struct {
	prefix string
	lookup func(string) (string, bool)
	errs   []error
}

// New returns a Reader of the process environment.
func New(prefix string) *Reader { return WithLookup(prefix, os.LookupEnv) }

// WithLookup returns a Reader that reads variables through lookup; tests
// pass a map's lookup.
func WithLookup(prefix string, lookup func(string) (string, bool)) *Reader {
	return &Reader{prefix: prefix, lookup: lookup}
}

// Name is the full variable name of a setting.
func (r *Reader) Name(name string) string { return r.prefix + name }

func (r *Reader) get(name string) (string, bool) {
	v, ok := r.lookup(r.prefix + name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// fail records that the variable's value v breaks the rule in accepted.
func (r *Reader) fail(name, v, accepted string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %s", r.prefix+name, v, accepted))
}

// Err returns every error met so far, one per line, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// String returns the variable, or def when unset.
func (r *Reader) String(name, def string) string {
	if v, ok := r.get(name); ok {
		return v
	}
	return def
}

// Required returns the variable, recording an error when it is unset.
func (r *Reader) Required(name, what string) string {
	v, ok := r.get(name)
	if !ok {
		r.errs = append(r.errs, fmt.Errorf("%s is not set: %s", r.prefix+name, what))
	}
	return v
}

// List splits a comma-separated variable, dropping blanks.
func (r *Reader) List(name string, def []string) []string {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Bool reads true/false (also 1/0, yes/no).
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off":
		return false
	}
	r.fail(name, v, "accepted values: true, false")
	return def
}

// Int reads an integer no smaller than lo.
func (r *Reader) Int(name string, def, lo int) int {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo {
		r.fail(name, v, fmt.Sprintf("want a whole number >= %d", lo))
		return def
	}
	return n
}

// Duration reads a Go duration ("250ms", "5s") no shorter than 0.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.fail(name, v, `want a duration such as "250ms" or "5s"`)
		return def
	}
	return d
}

// Enum reads one of the allowed values (case-insensitive, returned in
// lower case).
func (r *Reader) Enum(name, def string, allowed ...string) string {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	if l := strings.ToLower(v); slices.Contains(allowed, l) {
		return l
	}
	r.fail(name, v, "accepted values: "+strings.Join(allowed, ", "))
	return def
}

// TLS reads TLS, TLS_CA, TLS_CERT, TLS_KEY and TLS_SERVER_NAME under the
// prefix. It returns nil when TLS is off and no file is named. TLS_CA adds
// a PEM CA bundle to trust; TLS_CERT and TLS_KEY give a client certificate
// for mutual TLS.
func (r *Reader) TLS() *tls.Config {
	ca, cert, key := r.String("TLS_CA", ""), r.String("TLS_CERT", ""), r.String("TLS_KEY", "")
	on := r.Bool("TLS", ca != "" || cert != "")
	if !on {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.String("TLS_SERVER_NAME", "")}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			r.fail("TLS_CA", ca, "cannot read the CA file: "+err.Error())
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				r.fail("TLS_CA", ca, "no PEM certificate found in the file")
			}
			cfg.RootCAs = pool
		}
	}
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			r.fail("TLS_CERT", cert, "cannot load the client certificate with "+r.prefix+"TLS_KEY: "+err.Error())
		}
		cfg.Certificates = []tls.Certificate{pair}
	case cert != "" || key != "":
		r.errs = append(r.errs, fmt.Errorf("%sTLS_CERT and %sTLS_KEY must be set together for mutual TLS", r.prefix, r.prefix))
	}
	return cfg
}
