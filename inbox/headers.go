package inbox

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
)

// net/http hands handlers a map of headers, which loses the order they came
// in. To keep it, the server's connections are wrapped (ConnContext) so that
// the bytes read from each one are kept for a while; the capture handler
// finds its request's header block there (HeadersInOrder), checks it against
// what net/http parsed, and falls back to the map when the two disagree.

// recordLimit bounds what a connection keeps: the largest header block plus
// the read-ahead of the server's buffer fits well within it.
const recordLimit = 1<<20 + 64<<10

type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf []byte // bytes read and not yet claimed by a handler
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if len(c.buf)+n > recordLimit {
			// Only body bytes of the request being handled are dropped: the
			// next header block is read after them.
			drop := min(len(c.buf), len(c.buf)+n-recordLimit)
			c.buf = append(c.buf[:0], c.buf[drop:]...)
		}
		c.buf = append(c.buf, p[:n]...)
		c.mu.Unlock()
	}
	return n, err
}

// claim finds the first header block that starts with requestLine, removes
// it and everything before it, and returns it.
func (c *recordingConn) claim(requestLine string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := bytes.Index(c.buf, []byte(requestLine))
	if i < 0 {
		return nil
	}
	end := bytes.Index(c.buf[i:], []byte("\r\n\r\n"))
	if end < 0 {
		return nil
	}
	end += i + 4
	block := bytes.Clone(c.buf[i:end])
	n := copy(c.buf, c.buf[end:])
	c.buf = c.buf[:n]
	if cap(c.buf) > 64<<10 && n < 4<<10 {
		c.buf = slices.Clip(append([]byte(nil), c.buf...))
	}
	return block
}

type connKey struct{}

// ConnContext is meant for http.Server.ConnContext: it wraps nothing but
// remembers the connection so that the capture handler can read its header
// order. Use it together with RecordingListener.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*recordingConn); ok {
		return context.WithValue(ctx, connKey{}, rc)
	}
	return ctx
}

// RecordingListener wraps ln so that accepted connections keep what they
// read until the capture handler has taken its header block.
func RecordingListener(ln net.Listener) net.Listener { return recordingListener{ln} }

type recordingListener struct{ net.Listener }

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c}, nil
}

// HeadersInOrder returns r's headers in the order received, repeats kept,
// Host included. When the raw block cannot be found or does not match what
// net/http parsed, it returns the parsed headers, Host first, the others
// sorted by name.
func HeadersInOrder(r *http.Request) []Header {
	if rc, ok := r.Context().Value(connKey{}).(*recordingConn); ok && r.ProtoMajor == 1 {
		line := r.Method + " " + r.RequestURI + " " + r.Proto + "\r\n"
		if block := rc.claim(line); block != nil {
			if hs, ok := parseHeaderBlock(block); ok && sameHeaders(hs, r) {
				return hs
			}
		}
	}
	return sortedHeaders(r)
}

// parseHeaderBlock splits a raw request head (request line, header lines,
// blank line) into header fields. It reports false for anything net/http
// would not have taken as it is (folded lines, lines without a colon).
func parseHeaderBlock(block []byte) ([]Header, bool) {
	lines := strings.Split(strings.TrimSuffix(string(block), "\r\n\r\n"), "\r\n")
	if len(lines) == 0 {
		return nil, false
	}
	hs := make([]Header, 0, len(lines)-1)
	for _, line := range lines[1:] {
		if line == "" || line[0] == ' ' || line[0] == '\t' || strings.ContainsAny(line, "\r\n\x00") {
			return nil, false
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, false
		}
		hs = append(hs, Header{name, strings.Trim(value, " \t")})
	}
	return hs, true
}

// sameHeaders reports whether hs holds exactly the fields net/http parsed
// into r (Host, Transfer-Encoding and Trailer aside, which net/http moves
// out of r.Header).
func sameHeaders(hs []Header, r *http.Request) bool {
	n := 0
	seen := make(map[string]int, len(r.Header))
	for _, h := range hs {
		key := textproto.CanonicalMIMEHeaderKey(h[0])
		if key == "Host" {
			if h[1] != r.Host {
				return false
			}
			continue
		}
		if key == "Transfer-Encoding" || key == "Trailer" {
			continue
		}
		vals := r.Header[key]
		i := seen[key]
		if i >= len(vals) || vals[i] != h[1] {
			return false
		}
		seen[key] = i + 1
		n++
	}
	total := 0
	for _, vals := range r.Header {
		total += len(vals)
	}
	return n == total
}

func sortedHeaders(r *http.Request) []Header {
	hs := make([]Header, 0, len(r.Header)+1)
	if r.Host != "" {
		hs = append(hs, Header{"Host", r.Host})
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			hs = append(hs, Header{k, v})
		}
	}
	return hs
}
