package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckListen(t *testing.T) {
	cases := []struct {
		addr                 string
		configured, insecure bool
		ok                   bool
	}{
		{"127.0.0.1:8080", false, false, true},
		{"127.3.2.1:8080", false, false, true},
		{"[::1]:8080", false, false, true},
		{"[::ffff:127.0.0.1]:8080", false, false, true},
		{"localhost:8080", false, false, true},
		{"LocalHost:8080", false, false, true},
		{"0.0.0.0:8080", false, false, false},
		{"[::]:8080", false, false, false},
		{":8080", false, false, false},
		{"192.168.1.10:8080", false, false, false},
		{"example.com:8080", false, false, false},
		{"0.0.0.0:8080", true, false, true},
		{"0.0.0.0:8080", false, true, true},
		{":8080", true, true, true},
	}
	for _, c := range cases {
		err := CheckListen(c.addr, c.configured, c.insecure)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, configured=%v, insecure=%v) = %v", c.addr, c.configured, c.insecure, err)
			continue
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrInsecureListen) {
			t.Errorf("%q: %v is not ErrInsecureListen", c.addr, err)
		}
		for _, w := range []string{c.addr, "AUDITBUS_AUTH_HS256_SECRET", "AUDITBUS_AUTH_PUBLIC_KEYS", "AUDITBUS_AUTH_JWKS_FILE", "AUDITBUS_INSECURE=true", "127.0.0.1:8080"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not say %q", c.addr, err, w)
			}
		}
	}
	err := CheckListen("0.0.0.0:8080", false, false)
	if !strings.Contains(err.Error(), "every network interface") {
		t.Errorf("wildcard not explained: %v", err)
	}
	for _, addr := range []string{"8080", "127.0.0.1", ""} {
		if err := CheckListen(addr, true, false); err == nil || !strings.Contains(err.Error(), "host:port") {
			t.Errorf("CheckListen(%q) = %v, want an error asking for host:port", addr, err)
		}
	}
}
