package httpapi

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/auditbus/auditbus/pkg/apierror"
	"golang.org/x/net/netutil"
)

// Defaults of the connection bounds in Options.
const (
	DefaultReadTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 60 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxConnections = 1024
	// readHeaderTimeout bounds the request line and headers, within
	// ReadTimeout.
	readHeaderTimeout = 10 * time.Second
)

// CodeHeadersTooLarge answers a request whose headers pass MaxHeaderBytes.
const CodeHeadersTooLarge = "headers_too_large"

// httpServer is the http.Server of o's bounds around h.
func httpServer(o *Options, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(readHeaderTimeout, o.ReadTimeout),
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
	}
}

// limitListener holds at most n connections open: past it, Accept waits
// for one to close, and the connections wait in the kernel's backlog
// without costing the process a file descriptor.
func limitListener(ln net.Listener, n int) net.Listener { return netutil.LimitListener(ln, n) }

// headerErrorListener answers the 431 that net/http writes by itself,
// before any handler, as the JSON error every other answer is.
type headerErrorListener struct{ net.Listener }

func (l headerErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &headerErrorConn{Conn: c}, nil
}

// plain431 is what net/http writes, in one Write, on a connection whose
// request headers pass MaxHeaderBytes.
const plain431 = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large"

var json431 = sync.OnceValue(func() []byte {
	rec := &headerRecorder{h: http.Header{}}
	apierror.Write(rec, http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge,
		"the request's headers are larger than the server accepts; send fewer or shorter headers")
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 431 Request Header Fields Too Large\r\n")
	rec.h.Set("Connection", "close")
	rec.h.Set("Content-Length", strconv.Itoa(rec.body.Len()))
	_ = rec.h.Write(&b)
	b.WriteString("\r\n")
	b.Write(rec.body.Bytes())
	return b.Bytes()
})

type headerErrorConn struct{ net.Conn }

func (c *headerErrorConn) Write(p []byte) (int, error) {
	if string(p) == plain431 {
		if _, err := c.Conn.Write(json431()); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// headerRecorder keeps what apierror.Write answers.
type headerRecorder struct {
	h    http.Header
	body bytes.Buffer
}

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *headerRecorder) WriteHeader(int)             {}
