package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/envconf"
)

func TestConfigFromEnv(t *testing.T) {
	k := keys(t)
	pemFile := writeFile(t, "keys.pem", append(append([]byte{}, k.rsaPEM...), k.edPEM...))
	jwks := writeFile(t, "keys.jwks", map[string]any{"keys": []any{
		rsaJWK("rsa-1", &k.rsa2.PublicKey),
		map[string]any{"kty": "EC", "kid": "ec-1"},
	}})
	c, err := configFrom(envconf.WithLookup(EnvPrefix, env(
		"AUDITBUS_AUTH_HS256_SECRET", "base64:"+b64(k.secret),
		"AUDITBUS_AUTH_PUBLIC_KEYS", " "+pemFile+" , ",
		"AUDITBUS_AUTH_JWKS_FILE", jwks,
		"AUDITBUS_AUTH_ISSUER", "https://issuer.example",
		"AUDITBUS_AUTH_AUDIENCE", "auditbus,ops",
		"AUDITBUS_AUTH_LEEWAY", "5s")))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 4 || c.Issuer != "https://issuer.example" || strings.Join(c.Audience, "|") != "auditbus|ops" ||
		c.Leeway != 5*time.Second || len(c.Skipped) != 1 {
		t.Errorf("config %+v", c)
	}
	if c.Keys[0].Origin != "AUDITBUS_AUTH_HS256_SECRET" || c.Keys[3].ID != "rsa-1" {
		t.Errorf("keys %+v", c.Keys)
	}

	empty, err := configFrom(envconf.WithLookup(EnvPrefix, env()))
	if err != nil || len(empty.Keys) != 0 || empty.Leeway != DefaultLeeway {
		t.Errorf("no variables: %+v, %v", empty, err)
	}

	bad := []struct {
		name string
		env  []string
		want []string
	}{
		{"short secret", []string{"AUDITBUS_AUTH_HS256_SECRET", "hunter2"}, []string{"AUDITBUS_AUTH_HS256_SECRET: the secret is 7 bytes; use at least 32"}},
		{"secret not base64", []string{"AUDITBUS_AUTH_HS256_SECRET", "base64:%%%"}, []string{"AUDITBUS_AUTH_HS256_SECRET", "not valid base64"}},
		{"missing PEM file", []string{"AUDITBUS_AUTH_PUBLIC_KEYS", pemFile + ",/nonexistent/b.pem"}, []string{"AUDITBUS_AUTH_PUBLIC_KEYS", "/nonexistent/b.pem"}},
		{"JWKS file is PEM", []string{"AUDITBUS_AUTH_JWKS_FILE", pemFile}, []string{"AUDITBUS_AUTH_JWKS_FILE", pemFile, "not a JWK Set"}},
		{"missing JWKS file", []string{"AUDITBUS_AUTH_JWKS_FILE", "/nonexistent/k.jwks"}, []string{"AUDITBUS_AUTH_JWKS_FILE", "/nonexistent/k.jwks"}},
		{"leeway", []string{"AUDITBUS_AUTH_LEEWAY", "soon"}, []string{`AUDITBUS_AUTH_LEEWAY="soon"`}},
		{"leeway too long", []string{"AUDITBUS_AUTH_LEEWAY", "1h"}, []string{`AUDITBUS_AUTH_LEEWAY="1h0m0s": want a duration of at most 5m0s`}},
		{"every error at once", []string{"AUDITBUS_AUTH_HS256_SECRET", "x", "AUDITBUS_AUTH_LEEWAY", "-1s"},
			[]string{"AUDITBUS_AUTH_HS256_SECRET", "AUDITBUS_AUTH_LEEWAY"}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := configFrom(envconf.WithLookup(EnvPrefix, env(c.env...)))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c.name == "short secret" && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestConfigFromProcessEnv(t *testing.T) {
	t.Setenv("AUDITBUS_AUTH_HS256_SECRET", "too short")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "AUDITBUS_AUTH_HS256_SECRET") {
		t.Fatalf("error %v does not name the variable", err)
	}
	t.Setenv("AUDITBUS_AUTH_HS256_SECRET", "base64:"+b64(keys(t).secret))
	c, err := ConfigFromEnv()
	if err != nil || len(c.Keys) != 1 {
		t.Fatalf("config %+v, %v", c, err)
	}
}
