package daemon_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawConn opens a TCP connection to the daemon and writes s on it.
func (l *live) rawConn(t *testing.T, s string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if s != "" {
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// readResponse reads one HTTP response from c, giving up after limit.
func readResponse(t *testing.T, c net.Conn, limit time.Duration) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", limit, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// closedWithin reports whether the daemon closes c, reading and
// discarding until EOF, before limit.
func closedWithin(c net.Conn, limit time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF: closed by the daemon; a timeout is an error
}

// TestConnectionsBounded: a request with a missing or bad token and a
// body announced but never sent gets its 401 at once, without the daemon
// waiting for the body; a slow body and an idle keep-alive connection are
// closed after the read and idle timeouts; an answer the client does not
// read is given up after the write timeout; headers past the bound get a
// JSON 431; and no more than AUDITBUS_MAX_CONNECTIONS connections are
// served at once.
func TestConnectionsBounded(t *testing.T) {
	l := startLive(t, "", "AUDITBUS_HTTP_READ_TIMEOUT=1s", "AUDITBUS_HTTP_IDLE_TIMEOUT=1s", "AUDITBUS_MAX_CONNECTIONS=8",
		"AUDITBUS_MAX_HEADER_BYTES=8192")
	const head = "POST /v1/events HTTP/1.1\r\nHost: auditbus\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"

	t.Run("401 before the body", func(t *testing.T) {
		// A daemon that would wait two minutes for the body: the 401 comes
		// long before, since it does not wait for the body at all.
		patient := startLive(t, "", "AUDITBUS_HTTP_READ_TIMEOUT=2m")
		for _, auth := range []string{"", "Authorization: Bearer not-a-token\r\n", "Authorization: " + strings.Repeat("x", 100) + "\r\n"} {
			c := patient.rawConn(t, head+auth+"\r\n")
			resp, body := readResponse(t, c, 30*time.Second)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
				t.Errorf("%q: %d %s, want a JSON 401", auth, resp.StatusCode, body)
			}
		}
	})
	t.Run("slow body", func(t *testing.T) {
		c := l.rawConn(t, head+"Authorization: Bearer "+l.token+"\r\n\r\n{")
		if !closedWithin(c, 10*time.Second) {
			t.Error("a body sent one byte and then nothing kept its connection open 10 s with AUDITBUS_HTTP_READ_TIMEOUT=1s")
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := l.rawConn(t, "GET /healthz HTTP/1.1\r\nHost: auditbus\r\n\r\n")
		if resp, _ := readResponse(t, c, 5*time.Second); resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
		if !closedWithin(c, 10*time.Second) {
			t.Error("an idle keep-alive connection stayed open 10 s with AUDITBUS_HTTP_IDLE_TIMEOUT=1s")
		}
	})
	t.Run("431 is JSON", func(t *testing.T) {
		c := l.rawConn(t, "GET /healthz HTTP/1.1\r\nHost: auditbus\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
		resp, body := readResponse(t, c, 5*time.Second)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("Content-Type") != "application/json" ||
			!strings.Contains(body, `"code":"headers_too_large"`) {
			t.Errorf("%d %q %s, want a JSON 431", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("write timeout", func(t *testing.T) {
		// A client asks for a page of 8 MB and reads none of it for longer
		// than the write timeout: the daemon gives up on the answer and
		// closes the connection instead of holding the page for as long
		// as the client likes. The client's receive buffer is small, so
		// the answer cannot all wait in the kernel's buffers.
		w := startLive(t, "", "AUDITBUS_HTTP_WRITE_TIMEOUT=1s")
		big := strings.Repeat("a", 2<<20)
		for i := range 4 {
			body := fmt.Sprintf(`[{"specversion":"1.0","id":"w-%d","source":"/w","type":"com.example.w","time":"2026-01-01T00:00:00Z","data":%q}]`, i, big)
			w.mustCall(t, http.MethodPost, "/v1/events?topic=events", w.tokenWith(t, "events:write"), body, http.StatusAccepted, nil)
		}
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			if cerr := rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
			}); cerr != nil {
				return cerr
			}
			return err
		}}
		c, err := d.Dial("tcp", w.d.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /v1/events?type=com.example.w&limit=10 HTTP/1.1\r\nHost: auditbus\r\nAuthorization: Bearer "+
			w.tokenWith(t, "audit:read")+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		// Not a wait for a condition: the time the client does not read.
		time.Sleep(3 * time.Second)
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return // cut before the status line: the answer was given up
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("the whole page (%d bytes) went to a client that read nothing for 3 s with AUDITBUS_HTTP_WRITE_TIMEOUT=1s", n)
		}
	})
	t.Run("max connections", func(t *testing.T) {
		// Eight connections that send half a request line hold every slot
		// (until the read timeout closes them); the ninth, dialled after
		// them, waits behind them in the listen backlog.
		held := make([]net.Conn, 8)
		for i := range held {
			held[i] = l.rawConn(t, "GET /healthz HTTP/1.1\r\n")
		}
		ninth := l.rawConn(t, "GET /healthz HTTP/1.1\r\nHost: auditbus\r\n\r\n")
		_ = ninth.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, _ := ninth.Read(make([]byte, 1)); n > 0 {
			t.Fatal("a ninth connection was served while eight were open with AUDITBUS_MAX_CONNECTIONS=8")
		}
		for _, c := range held {
			_ = c.Close()
		}
		if resp, _ := readResponse(t, ninth, 10*time.Second); resp.StatusCode != http.StatusOK {
			t.Errorf("the ninth connection, once the others closed: %d", resp.StatusCode)
		}
	})
}
