package clickhouse

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
)

// LegacyDialer wraps dial so clickhouse-go's batch inserts work against
// ClickHouse servers before 19.1 (18.16 is the one measured): the driver
// sends "INSERT INTO t (...) FORMAT Native" in the query packet, which those
// servers answer with an empty header, while they answer "INSERT INTO t
// (...) VALUES" with the table's header and then read the same Native blocks.
// The returned dialer's connections rewrite " FORMAT Native" at the end of an
// INSERT query to " VALUES       " (same length, so no length prefix
// changes) and pass every other byte through untouched.
//
// Only a write that starts a query packet is inspected, and only a query
// text with its length prefix intact (it starts with INSERT and ends with
// " FORMAT Native") is rewritten, so data blocks, which may hold those bytes
// as payload, never are. Modern servers need none of this; pass the dialer
// only for old ones (Config.Compat does so by version).
func LegacyDialer(dial func(ctx context.Context, addr string) (net.Conn, error)) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		return &legacyConn{Conn: c}, nil
	}
}

type legacyConn struct{ net.Conn }

// clientQuery is the native protocol's packet type of a client query.
const clientQuery = 1

var (
	formatNative = []byte(" FORMAT Native")
	valuesSame   = []byte(" VALUES       ")
)

func (c *legacyConn) Write(b []byte) (int, error) {
	if out, ok := rewriteInsert(b); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// rewriteInsert returns a copy of the packet b with its INSERT query's
// " FORMAT Native" replaced, or false when b is not such a query packet.
func rewriteInsert(b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0] != clientQuery {
		return nil, false
	}
	i := bytes.LastIndex(b, formatNative)
	if i < 0 {
		return nil, false
	}
	end := i + len(formatNative)
	var lenBuf [binary.MaxVarintLen64]byte
	// The query text is a length-prefixed string ending at end; find the
	// start whose varint prefix says exactly that length.
	for s := i - 1; s > 0; s-- {
		if !hasPrefixFold(b[s:], "INSERT") {
			continue
		}
		n := binary.PutUvarint(lenBuf[:], uint64(end-s))
		if s >= n && bytes.Equal(b[s-n:s], lenBuf[:n]) {
			out := bytes.Clone(b)
			copy(out[i:], valuesSame)
			return out, true
		}
	}
	return nil, false
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}
