package smtpsink_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/inbox/inboxtest"
	"github.com/callbin/callbin/scenarios"
	"github.com/callbin/callbin/smtpsink"
)

// MustOpenStore opens a store in a fresh folder, closed at the end of the
// test.
var MustOpenStore = inboxtest.MustOpenStore

// MustServe opens srv on 127.0.0.1:0 (with a fresh store and scripts when
// it has none) and closes it at the end of the test.
func MustServe(tb testing.TB, srv *smtpsink.Server) *smtpsink.Server {
	tb.Helper()
	if srv == nil {
		srv = &smtpsink.Server{}
	}
	if srv.Store == nil {
		srv.Store = MustOpenStore(tb)
	}
	if srv.Scripts == nil {
		srv.Scripts = &inbox.Scripts{Store: srv.Store}
	}
	srv.Addr = "127.0.0.1:0"
	if err := srv.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			tb.Error(err)
		}
	})
	return srv
}

// MustDial connects go-smtp's client to srv and says EHLO.
func MustDial(tb testing.TB, srv *smtpsink.Server) *smtp.Client {
	tb.Helper()
	c, err := smtp.Dial(srv.ListenAddr())
	if err != nil {
		tb.Fatal(err)
	}
	c.CommandTimeout = 10 * time.Second
	c.SubmissionTimeout = 10 * time.Second
	if err := c.Hello("client.test"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// send sends one message over c and returns the reply to the end of DATA
// (or the first error).
func send(c *smtp.Client, from string, to []string, msg string) (*smtp.DataResponse, error) {
	if err := c.Mail(from, nil); err != nil {
		return nil, err
	}
	for _, addr := range to {
		if err := c.Rcpt(addr, nil); err != nil {
			return nil, err
		}
	}
	w, err := c.Data()
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return nil, err
	}
	return w.CloseWithResponse()
}

// smtpCode is the code of an *smtp.SMTPError, 0 for any other error.
func smtpCode(err error) int {
	if e, ok := err.(*smtp.SMTPError); ok {
		return e.Code
	}
	return 0
}

// captures returns a bin's captures, oldest first, bodies included.
func captures(tb testing.TB, s *inbox.Store, bin string) []*inbox.Capture {
	tb.Helper()
	caps, err := s.FindCaptures(context.Background(), inbox.CaptureFilter{Bin: bin, Oldest: true, Bodies: true, Limit: inbox.MaxLimit})
	if errors.Is(err, inbox.ErrNotFound) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	return caps
}

// setScript gives bin the scenario written in YAML.
func setScript(tb testing.TB, srv *smtpsink.Server, bin, yaml string) {
	tb.Helper()
	script, err := scenarios.Parse([]byte(yaml))
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Scripts.Set(context.Background(), bin, script); err != nil {
		tb.Fatal(err)
	}
}

// rawConn is a bare TCP client for what go-smtp's client will not send.
type rawConn struct {
	tb testing.TB
	net.Conn
	r *bufio.Reader
}

func dialRaw(tb testing.TB, addr string) *rawConn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{tb: tb, Conn: c, r: bufio.NewReader(c)}
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (c *rawConn) reply() string {
	c.tb.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.tb.Fatalf("reading reply: got %q, %v", line, err)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

// cmd sends a line and returns the reply.
func (c *rawConn) cmd(line string) string {
	c.tb.Helper()
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		c.tb.Fatal(err)
	}
	return c.reply()
}

// expect fails unless reply starts with prefix.
func expect(tb testing.TB, reply, prefix string) {
	tb.Helper()
	if !strings.HasPrefix(reply, prefix) {
		tb.Fatalf("got reply %q, want %q...", reply, prefix)
	}
}

// serveAPI serves the inbox routes the way callbin does, on 127.0.0.1.
func serveAPI(tb testing.TB, srv *smtpsink.Server) string {
	tb.Helper()
	h := &inbox.Handler{Store: srv.Store, Scripts: srv.Scripts}
	r := inbox.NewRouter()
	h.Register(r)
	ts := httptest.NewServer(r)
	tb.Cleanup(ts.Close)
	return ts.URL
}

// getJSON fetches url and decodes its JSON into v.
func getJSON(tb testing.TB, url string, v any) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tb.Fatalf("GET %s: got %d %s, want 200", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("GET %s: %v in %s", url, err, b)
	}
}

// sleeps records the scripted waits of a server and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}
