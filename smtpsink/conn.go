package smtpsink

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/callbin/callbin/inbox"
)

// listener hands go-smtp connections wrapped in conn, keeps track of them
// so that Close can cut them, and turns away those past MaxConnections.
type listener struct {
	net.Listener
	srv *Server

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		switch {
		case l.closed:
			l.mu.Unlock()
			nc.Close()
			continue
		case len(l.conns) >= l.srv.MaxConnections:
			l.mu.Unlock()
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(nc, "421 4.7.0 %s too many connections (%d), try again later\r\n", l.srv.Domain, l.srv.MaxConnections)
			nc.Close()
			l.srv.log.Warn("connection turned away", "remote", nc.RemoteAddr().String(), "max_connections", l.srv.MaxConnections)
			continue
		}
		c := &conn{Conn: nc, l: l}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		return c, nil
	}
}

// shut closes the listener and every connection.
func (l *listener) shut() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.Listener.Close()
	for _, c := range conns {
		c.Close()
	}
}

// conn is one client connection. Every read pushes the read deadline
// ReadTimeout ahead, so that a client may take as long as it needs to send
// a big message as long as it keeps sending, while an idle one is cut (go-smtp
// answers it 421). It also notes the first command, and can dribble its next
// write for a slow reply.
type conn struct {
	net.Conn
	l *listener

	first    [4]byte // the first bytes the client sent: EHLO or HELO
	nFirst   int
	slowNext bool // the next write goes out a byte at a time (conn goroutine only)

	closeOnce sync.Once
}

func (c *conn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.l.srv.ReadTimeout))
	n, err := c.Conn.Read(p)
	if c.nFirst < len(c.first) {
		c.nFirst += copy(c.first[c.nFirst:], p[:n])
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if !c.slowNext {
		return c.Conn.Write(p)
	}
	c.slowNext = false
	for i := range p {
		if i > 0 {
			if err := c.l.srv.sleep(c.l.srv.SlowInterval); err != nil {
				return i, err
			}
		}
		c.Conn.SetWriteDeadline(time.Now().Add(c.l.srv.WriteTimeout))
		if _, err := c.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return err
}

// proto names the protocol as a Received header would (RFC 3848).
func (c *conn) proto(authenticated bool) string {
	p := "SMTP"
	if strings.EqualFold(string(c.first[:c.nFirst]), "EHLO") {
		p = "ESMTP"
	}
	if authenticated {
		p += "A"
	}
	return p
}

// reset drops the connection with a TCP reset.
func (c *conn) reset() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// writeLine sends one reply line itself, outside go-smtp (before a
// scripted close).
func (c *conn) writeLine(code int, msg string) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.l.srv.WriteTimeout))
	enh, msg := splitEnhanced(code, msg)
	switch {
	case enh != smtp.EnhancedCodeNotSet:
		fmt.Fprintf(c.Conn, "%d %d.%d.%d %s\r\n", code, enh[0], enh[1], enh[2], msg)
	case code/100 == 2, code/100 == 4, code/100 == 5:
		fmt.Fprintf(c.Conn, "%d %d.0.0 %s\r\n", code, code/100, msg)
	default:
		fmt.Fprintf(c.Conn, "%d %s\r\n", code, msg)
	}
}

// hang never answers: it holds the connection, discarding whatever the
// client sends, until the client gives up, the server closes, or
// inbox.MaxHang has passed; then it closes the connection.
func (c *conn) hang() {
	c.Conn.SetReadDeadline(time.Now().Add(inbox.MaxHang))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Conn.Read(buf); err != nil {
			break
		}
	}
	c.Close()
}

// garbageBytes are what the garbage fault sends: nothing an SMTP client can
// take for a reply.
const garbageBytes = "\x00\xff\x16\x03 this is not SMTP \xfe\r\n"

func (c *conn) garbage() {
	c.Conn.SetWriteDeadline(time.Now().Add(c.l.srv.WriteTimeout))
	c.Conn.Write([]byte(garbageBytes))
	c.Close()
}
