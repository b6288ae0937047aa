package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestNewNamesTheBadEntry(t *testing.T) {
	for _, tc := range []struct{ allow, deny []string }{
		{allow: []string{"10.0.0.0/33"}},
		{deny: []string{"bad host!"}},
	} {
		_, _, err := New(tc.allow, tc.deny)
		if err == nil || !strings.Contains(err.Error(), "AUDITBUS_WEBHOOK_") {
			t.Errorf("New(%q, %q): %v, want an error naming the variable", tc.allow, tc.deny, err)
		}
	}
}

func TestStrictPolicy(t *testing.T) {
	strict, trusted, err := New(nil, []string{".blocked.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "[::1]", "::ffff:127.0.0.1", "169.254.169.254", "fd00:ec2::254", "fe80::1", "10.1.1.1", "172.20.0.1", "192.168.1.1",
		"100.100.100.200", "0.0.0.0", "localhost", "metadata.google.internal", "a.localhost"} {
		if err := strict.CheckHost(host); !errors.Is(err, ErrDenied) {
			t.Errorf("strict.CheckHost(%q) = %v, want denied", host, err)
		}
	}
	for _, host := range []string{"8.8.8.8", "hooks.example.com", "2606:4700::1"} {
		if err := strict.CheckHost(host); err != nil {
			t.Errorf("strict.CheckHost(%q) = %v, want allowed", host, err)
		}
	}
	if err := trusted.CheckHost("127.0.0.1"); err != nil {
		t.Errorf("trusted loopback: %v", err)
	}
	if err := trusted.CheckHost("x.blocked.example"); !errors.Is(err, ErrDenied) {
		t.Errorf("trusted denied domain: %v", err)
	}
}

// TestDialerChecksTheResolvedAddress dials loopback through both
// policies, and checks a public name found at a loopback address (the
// daemon's test TestSSRFWebhookEgress rebinds a real name over DNS).
func TestDialerChecksTheResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	strict, trusted, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := strict.Dialer(time.Second, 0)(ctx, "tcp", net.JoinHostPort("127.0.0.1", port)); !errors.Is(err, ErrDenied) {
		t.Errorf("strict dial to loopback: %v, want denied", err)
	}
	c, err := trusted.Dialer(time.Second, 0)(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatalf("trusted dial to loopback: %v", err)
	}
	_ = c.Close()
	var d *DeniedError
	err = strict.CheckAddr("public.example", netip.MustParseAddr("127.0.0.1"))
	if !errors.As(err, &d) || d.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("CheckAddr of a public name at loopback: %v", err)
	}
}
