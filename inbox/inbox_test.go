package inbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/inbox/inboxtest"
)

// MustOpenStore opens a store in a fresh folder, closed at the end of the
// test.
var MustOpenStore = inboxtest.MustOpenStore

// Server is a real HTTP server on 127.0.0.1 serving the inbox routes the
// way callbin does.
type Server struct {
	URL     string
	Store   *inbox.Store
	Handler *inbox.Handler
}

// MustServe starts a server for h (its Store is opened if nil).
func MustServe(tb testing.TB, h *inbox.Handler) *Server {
	tb.Helper()
	if h == nil {
		h = &inbox.Handler{}
	}
	if h.Store == nil {
		h.Store = MustOpenStore(tb)
	}
	r := inbox.NewRouter()
	h.Register(r)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: r, ConnContext: inbox.ConnContext, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(inbox.RecordingListener(ln))
	tb.Cleanup(func() { srv.Close() })
	return &Server{URL: "http://" + ln.Addr().String(), Store: h.Store, Handler: h}
}

// do sends a request and returns the status and body.
func do(tb testing.TB, method, url string, body []byte, headers ...string) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

func mustJSON(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
}

type capture struct {
	ID           int64       `json:"id"`
	Bin          string      `json:"bin"`
	Kind         string      `json:"kind"`
	Method       string      `json:"method"`
	Path         string      `json:"path"`
	Query        string      `json:"query"`
	Headers      [][2]string `json:"headers"`
	Body         *string     `json:"body"`
	BodyBase64   *string     `json:"body_base64"`
	BodyEncoding string      `json:"body_encoding"`
	Size         int64       `json:"size"`
	Truncated    bool        `json:"truncated"`
	RemoteAddr   string      `json:"remote_addr"`
	ReceivedAt   string      `json:"received_at"`
	Reply        inbox.Reply `json:"reply"`
}

type captureList struct {
	Items []capture `json:"items"`
	Next  *string   `json:"next"`
}

type bin struct {
	Name          string  `json:"name"`
	URL           string  `json:"url"`
	Email         string  `json:"email"`
	CreatedAt     string  `json:"created_at"`
	CaptureCount  int64   `json:"capture_count"`
	LastCaptureAt *string `json:"last_capture_at"`
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// rawRequest writes a request by hand on a fresh connection and returns
// the status line.
func rawRequest(tb testing.TB, base, raw string) string {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		tb.Fatal(err)
	}
	line, err := readLine(conn)
	if err != nil {
		tb.Fatal(err)
	}
	return line
}

func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := r.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return strings.TrimRight(string(b), "\r"), nil
		}
		b = append(b, one[0])
	}
}

func TestStoreReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inbox.db")
	ctx := context.Background()
	for round := 1; round <= 2; round++ {
		s := &inbox.Store{Path: path}
		if err := s.Open(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		c := &inbox.Capture{Bin: "keep", Kind: inbox.KindHTTP, Method: "POST", Path: "/b/keep", Body: []byte("x"), Size: 1,
			ReceivedAt: time.Now(), Reply: inbox.Reply{Status: 200}}
		if err := s.Add(ctx, c); err != nil {
			t.Fatal(err)
		}
		if c.ID != int64(round) {
			t.Errorf("round %d: got id %d, want %d", round, c.ID, round)
		}
		b, err := s.FindBin(ctx, "keep")
		if err != nil {
			t.Fatal(err)
		}
		if b.CaptureCount != int64(round) {
			t.Errorf("round %d: got count %d, want %d", round, b.CaptureCount, round)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStoreClosedRefuses(t *testing.T) {
	s := &inbox.Store{Path: filepath.Join(t.TempDir(), "inbox.db")}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := s.Add(context.Background(), &inbox.Capture{Bin: "x", Kind: inbox.KindHTTP, ReceivedAt: time.Now()})
	if err != inbox.ErrClosed {
		t.Errorf("got %v, want ErrClosed", err)
	}
}

// Every capture acknowledged while Close runs is stored: Close drains the
// queue before it stops the writer.
func TestStoreCloseUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inbox.db")
	s := &inbox.Store{Path: path}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked []int64
		wg    sync.WaitGroup
	)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				c := &inbox.Capture{Bin: "load", Kind: inbox.KindHTTP, Method: "POST", ReceivedAt: time.Now(), Body: []byte("b")}
				if err := s.Add(context.Background(), c); err != nil {
					return
				}
				mu.Lock()
				acked = append(acked, c.ID)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s2 := &inbox.Store{Path: path}
	if err := s2.Open(); err != nil {
		t.Fatal(err)
	}
	defer s2.Close(context.Background())
	for _, id := range acked {
		if _, err := s2.FindCapture(context.Background(), "load", id); err != nil {
			t.Fatalf("acknowledged capture %d: %v", id, err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no capture was acknowledged")
	}
}

func TestRetention(t *testing.T) {
	s := MustOpenStore(t)
	ctx := context.Background()
	old := time.Now().Add(-2 * time.Hour)
	for i := 0; i < 5; i++ {
		at := old
		if i >= 3 {
			at = time.Now()
		}
		if err := s.Add(ctx, &inbox.Capture{Bin: "r", Kind: inbox.KindHTTP, ReceivedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteBefore(ctx, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("got %d deleted, want 3", n)
	}
	b, err := s.FindBin(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if b.CaptureCount != 2 {
		t.Errorf("got count %d, want 2", b.CaptureCount)
	}
	caps, err := s.FindCaptures(ctx, inbox.CaptureFilter{Bin: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 2 {
		t.Errorf("got %d captures left, want 2", len(caps))
	}
}

func TestNormalizeBinName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"hook", "hook", true},
		{"Hook-1", "hook-1", true},
		{"a.b_c", "a.b_c", true},
		{"", "", false},
		{"-lead", "", false},
		{".lead", "", false},
		{"a..b", "", false},
		{"sp ace", "", false},
		{"slash/x", "", false},
		{"üml", "", false},
		{strings.Repeat("a", 64), strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), "", false},
	}
	for _, tt := range tests {
		got, err := inbox.NormalizeBinName(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeBinName(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
