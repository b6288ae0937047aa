package httpapi

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"

	"github.com/auditbus/auditbus/sinks"
)

// DefaultQueryMaxBytes bounds the JSON of one page of GET /v1/events when
// Options.QueryMaxBytes is 0.
const DefaultQueryMaxBytes = 16 << 20

// maxChunk is the most versions streamPage asks the store for at once.
const maxChunk = 1000

// streamPage answers GET /v1/events: it reads the page from the store a
// chunk at a time and writes each chunk out before reading the next, so
// that the versions held at once are bounded by the chunk, not the page.
// The page ends at q's limit, at the end of what q selects, or at the
// first version that brings the answer to Options.QueryMaxBytes, with
// the cursor after it as next.
//
// A chunk holds as many versions as the bytes left allow at the size of
// the largest version seen so far; the first assumes versions as large
// as the largest request body (Options.MaxBodyBytes).
func (s *Server) streamPage(w http.ResponseWriter, r *http.Request, q sinks.Query) {
	want := q.PageSize()
	maxBytes := s.o.QueryMaxBytes
	largest := int(min(s.o.MaxBodyBytes, int64(maxBytes)))
	var (
		cw      *countingWriter
		bw      *bufio.Writer
		pw      pageWriter
		written int // versions written
		next    string
	)
	cq := q
	for {
		chunk := max(1, min(maxChunk, want-written, (maxBytes-size(cw, bw))/max(largest, 1)))
		cq.Limit = chunk
		page, err := s.o.Store.Query(r.Context(), cq)
		if err == nil {
			err = checkItems(page.Items)
		}
		if err != nil {
			if bw == nil {
				s.storeFailed(w, r, "query", err)
				return
			}
			// The 200 is out: cut the answer off, so the client sees a
			// broken answer rather than a short page that looks whole.
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "audit query failed while streaming its answer", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
			panic(http.ErrAbortHandler)
		}
		if bw == nil {
			startJSON(w)
			cw = &countingWriter{w: w}
			bw = bufio.NewWriterSize(cw, 32<<10)
			pw = pageWriter{w: bw, narrowed: narrowedJSON(q.Within)}
			pw.open()
		}
		full := false
		for i := range page.Items {
			before := size(cw, bw)
			pw.item(written, &page.Items[i])
			written++
			largest = max(largest, size(cw, bw)-before)
			if size(cw, bw) >= maxBytes && written < want {
				next, full = sinks.CursorAfter(&page.Items[i], q.Desc), true
				break
			}
		}
		if full {
			break
		}
		if page.Next == "" || written >= want {
			next = page.Next
			break
		}
		cq.Cursor = page.Next
	}
	pw.close(next)
	if err := bw.Flush(); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "audit query answer cut short", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
	}
}

// size is how many bytes of the answer are written or buffered.
func size(cw *countingWriter, bw *bufio.Writer) int {
	if cw == nil {
		return 0
	}
	return cw.n + bw.Buffered()
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}
