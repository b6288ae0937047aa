package auth

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrInsecureListen is the reason CheckListen refuses an address.
var ErrInsecureListen = errors.New("refusing to serve without authentication on a non-loopback address")

// CheckListen decides whether the daemon may listen on addr ("host:port").
// With keys configured any address is allowed. Without keys only a
// loopback address is: 127.0.0.0/8, ::1 or localhost; an empty host,
// 0.0.0.0 and :: listen on every interface and are not loopback. insecure
// (AUDITBUS_INSECURE=true) allows any address anyway. The error wraps
// ErrInsecureListen and says how to fix it; a malformed addr is an error
// too.
func CheckListen(addr string, configured, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("auditbus: listen address %q: %w; want host:port such as 127.0.0.1:8080", addr, err)
	}
	if configured || insecure || isLoopback(host) {
		return nil
	}
	where := fmt.Sprintf("%q", addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		where += " (every network interface)"
	}
	return fmt.Errorf("auditbus: listen on %s: %w: no token keys are configured, so anyone who can reach the address could send and read events. "+
		"Set %sHS256_SECRET, %sPUBLIC_KEYS or %sJWKS_FILE to require JWT bearer tokens; "+
		"or listen on a loopback address such as 127.0.0.1:8080; "+
		"or set %s=true to serve without authentication anyway",
		where, ErrInsecureListen, EnvPrefix, EnvPrefix, EnvPrefix, EnvInsecure)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}
