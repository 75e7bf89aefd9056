package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testLogger discards logs unless -v.
func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(&tbWriter{tb: tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tbWriter struct{ tb testing.TB }

func (w *tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// MustServe serves handler on 127.0.0.1:0 until the end of the test.
func MustServe(tb testing.TB, handler http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(handler) // listens on 127.0.0.1:0
	tb.Cleanup(srv.Close)
	return srv
}

// MustServeHub serves h at /api/v1/stream on 127.0.0.1:0 and closes both at
// the end of the test.
func MustServeHub(tb testing.TB, h *Hub) *httptest.Server {
	tb.Helper()
	if h.Logger == nil {
		h.Logger = testLogger(tb)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/stream", h)
	srv := httptest.NewServer(mux) // listens on 127.0.0.1:0
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			tb.Errorf("hub close: got %v, want nil", err)
		}
		srv.Close()
	})
	return srv
}

func streamURL(srv *httptest.Server, query string) string {
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/stream"
	if query != "" {
		u += "?" + query
	}
	return u
}

// MustDial opens the stream with gorilla's dialer and closes it at the end
// of the test.
func MustDial(tb testing.TB, srv *httptest.Server, query string) *websocket.Conn {
	tb.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(streamURL(srv, query), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial ?%s: got %v (status %d), want a connection", query, err, status)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// MustSubscribe dials and waits until the hub counts one more subscriber,
// so that what is published next reaches it.
func MustSubscribe(tb testing.TB, h *Hub, srv *httptest.Server, query string) *websocket.Conn {
	tb.Helper()
	before := h.Clients()
	conn := MustDial(tb, srv, query)
	waitFor(tb, "subscriber registered", func() bool { return h.Clients() > before })
	return conn
}

// waitFor polls cond every millisecond for up to 5 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still not true after 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// event is a decoded stream message.
type event map[string]any

func (e event) typ() string { s, _ := e["type"].(string); return s }

func (e event) id() int64 { f, _ := e["id"].(float64); return int64(f) }

// readEvent reads one message within 5 s.
func readEvent(tb testing.TB, conn *websocket.Conn) event {
	tb.Helper()
	ev, err := tryReadEvent(conn, 5*time.Second)
	if err != nil {
		tb.Fatalf("read event: got %v, want an event", err)
	}
	return ev
}

func tryReadEvent(conn *websocket.Conn, wait time.Duration) (event, error) {
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	typ, data, err := conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.TextMessage {
		return nil, errors.New("not a text message")
	}
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// readUntilClose reads until the connection ends and returns the close
// error, or fails after 5 s.
func readUntilClose(tb testing.TB, conn *websocket.Conn) error {
	tb.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				tb.Fatalf("read: got a timeout, want the connection closed")
			}
			return err
		}
	}
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// captureEvent is what inbox publishes after a capture is committed.
func captureEvent(bin string, id int64) Message {
	return Message{Bin: bin, ID: id, Data: map[string]any{
		"type": "capture", "bin": bin, "id": id, "kind": "http", "method": "POST", "path": "/b/" + bin, "size": 2,
	}}
}

// fakeStore is a capture log that a Backlog reads, as inbox's store would.
type fakeStore struct {
	mu    sync.Mutex
	items []Message
	calls int
}

func (s *fakeStore) add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, m)
}

func (s *fakeStore) lastID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.items) == 0 {
		return 0
	}
	return s.items[len(s.items)-1].ID
}

func (s *fakeStore) backlog(_ context.Context, bin string, since int64, limit int) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var out []Message
	for _, m := range s.items {
		if m.ID > since && (bin == "" || m.Bin == bin) {
			out = append(out, m)
			if len(out) == limit {
				break
			}
		}
	}
	return slices.Clone(out), nil
}
