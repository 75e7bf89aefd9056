package inbox_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbin/callbin/inbox"
)

func TestCaptureKeepsEverything(t *testing.T) {
	srv := MustServe(t, nil)
	// Headers written by hand, so that their order and repeats are known.
	raw := "POST /b/Hook/a/b%2Fc/../d?x=1&x=2&y HTTP/1.1\r\n" +
		"Host: example.test\r\n" +
		"X-Zeta: 1\r\n" +
		"x-alpha: two\r\n" +
		"X-Zeta: 3\r\n" +
		"Content-Type: application/octet-stream\r\n" +
		"Content-Length: 4\r\n" +
		"\r\n" +
		"\x00\xff\xfe\x01"
	if got := rawRequest(t, srv.URL, raw); got != "HTTP/1.1 200 OK" {
		t.Fatalf("got %q, want HTTP/1.1 200 OK", got)
	}
	status, body := do(t, "GET", srv.URL+"/api/v1/bins/hook/captures", nil)
	if status != 200 {
		t.Fatalf("got %d %s", status, body)
	}
	var list captureList
	mustJSON(t, body, &list)
	if len(list.Items) != 1 {
		t.Fatalf("got %d captures, want 1", len(list.Items))
	}
	c := list.Items[0]
	wantHeaders := [][2]string{
		{"Host", "example.test"}, {"X-Zeta", "1"}, {"x-alpha", "two"}, {"X-Zeta", "3"},
		{"Content-Type", "application/octet-stream"}, {"Content-Length", "4"},
	}
	if fmt.Sprint(c.Headers) != fmt.Sprint(wantHeaders) {
		t.Errorf("got headers %v, want %v", c.Headers, wantHeaders)
	}
	if c.Path != "/b/Hook/a/b%2Fc/../d" || c.Query != "x=1&x=2&y" || c.Method != "POST" || c.Bin != "hook" {
		t.Errorf("got %s %s ? %s in %s", c.Method, c.Path, c.Query, c.Bin)
	}
	if c.Size != 4 || c.Truncated || c.Reply.Status != 200 || !strings.HasPrefix(c.RemoteAddr, "127.0.0.1:") {
		t.Errorf("got size %d truncated %v reply %+v remote %q", c.Size, c.Truncated, c.Reply, c.RemoteAddr)
	}
	if _, err := time.Parse(time.RFC3339Nano, c.ReceivedAt); err != nil {
		t.Errorf("received_at %q: %v", c.ReceivedAt, err)
	}
	if c.Body != nil || c.BodyBase64 != nil {
		t.Errorf("a list carries no bodies, got %v %v", c.Body, c.BodyBase64)
	}

	status, body = do(t, "GET", fmt.Sprintf("%s/api/v1/bins/hook/captures/%d", srv.URL, c.ID), nil)
	var one capture
	mustJSON(t, body, &one)
	if status != 200 || one.BodyEncoding != "base64" || one.BodyBase64 == nil {
		t.Fatalf("got %d %s", status, body)
	}
	if got, _ := base64.StdEncoding.DecodeString(*one.BodyBase64); !bytes.Equal(got, []byte("\x00\xff\xfe\x01")) {
		t.Errorf("got body %x, want 00fffe01", got)
	}
	_, rawBody := do(t, "GET", fmt.Sprintf("%s/api/v1/bins/hook/captures/%d/raw", srv.URL, c.ID), nil)
	if !bytes.Equal(rawBody, []byte("\x00\xff\xfe\x01")) {
		t.Errorf("got raw %x, want 00fffe01", rawBody)
	}
}

// Header values that are not UTF-8 are kept byte for byte.
func TestCaptureKeepsBinaryHeaders(t *testing.T) {
	srv := MustServe(t, nil)
	raw := "GET /b/bin8 HTTP/1.1\r\nHost: x\r\nX-Raw: \xff\xfe caf\xe9\r\n\r\n"
	if got := rawRequest(t, srv.URL, raw); got != "HTTP/1.1 200 OK" {
		t.Fatalf("got %q", got)
	}
	c, err := srv.Store.FindCapture(context.Background(), "bin8", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Headers) != 2 || c.Headers[1] != (inbox.Header{"X-Raw", "\xff\xfe caf\xe9"}) {
		t.Errorf("got %q", c.Headers)
	}
}

func TestCaptureHeadersOnKeptAliveConnection(t *testing.T) {
	srv := MustServe(t, nil)
	client := &http.Client{}
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("PUT", srv.URL+"/b/alive", strings.NewReader(strings.Repeat("POST /b/alive HTTP/1.1\r\n", i)))
		req.Header.Set("X-Round", strconv.Itoa(i))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	_, body := do(t, "GET", srv.URL+"/api/v1/bins/alive/captures?limit=10", nil)
	var list captureList
	mustJSON(t, body, &list)
	if len(list.Items) != 5 {
		t.Fatalf("got %d captures, want 5", len(list.Items))
	}
	for i, c := range list.Items {
		round := strconv.Itoa(4 - i)
		found := false
		for _, h := range c.Headers {
			if h[0] == "X-Round" {
				found = h[1] == round
			}
		}
		if !found {
			t.Errorf("capture %d: got headers %v, want X-Round %s", c.ID, c.Headers, round)
		}
	}
}

func TestCaptureTruncates(t *testing.T) {
	srv := MustServe(t, &inbox.Handler{MaxBody: 10})
	status, body := do(t, "POST", srv.URL+"/b/big", []byte("0123456789abcdef"))
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d %s, want 413", status, body)
	}
	c, err := srv.Store.WaitCapture(context.Background(), inbox.CaptureFilter{Bin: "big"})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Body) != "0123456789" || !c.Truncated || c.Reply.Status != 413 {
		t.Errorf("got body %q truncated %v reply %+v", c.Body, c.Truncated, c.Reply)
	}
}

func TestCaptureRefusesBadBinNames(t *testing.T) {
	srv := MustServe(t, nil)
	for _, path := range []string{
		"/b/bad%20name", "/b/" + strings.Repeat("x", 65), "/b/..", "/b/%2e%2e/x", "/b/a%2Fb", "/b/%ff", "/b/",
	} {
		status, body := do(t, "POST", srv.URL+path, []byte("x"))
		var e apiError
		mustJSON(t, body, &e)
		if status != 400 || e.Error.Code != "invalid_request" || e.Error.Message == "" {
			t.Errorf("%s: got %d %s, want 400 with a message", path, status, body)
		}
	}
	bins, err := srv.Store.FindBins(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(bins) != 0 {
		t.Errorf("got %d bins, want none created", len(bins))
	}
}

func TestBinsAPI(t *testing.T) {
	srv := MustServe(t, nil)
	status, body := do(t, "POST", srv.URL+"/api/v1/bins", []byte(`{"name":"Orders"}`))
	var b bin
	mustJSON(t, body, &b)
	if status != 201 || b.Name != "orders" || b.URL != srv.URL+"/b/orders" || b.Email != "orders@callbin.local" {
		t.Fatalf("got %d %s", status, body)
	}
	if status, body = do(t, "POST", srv.URL+"/api/v1/bins", []byte(`{"name":"orders"}`)); status != 409 {
		t.Errorf("duplicate: got %d %s, want 409", status, body)
	}
	for bad, says := range map[string]string{
		`{"name":"no way"}`:   `only letters, digits`,
		`{"name":`:            `malformed JSON: it ends too soon`,
		`{"name":"a",}`:       `malformed JSON at byte 13`,
		`{"nam":"x"}`:         `unknown field \"nam\"`,
		`[1]`:                 `the body must be a JSON object, not array`,
		`{"name":7}`:          `field \"name\" must be a string, not number`,
		`{"name":"a"} {}`:     `data after the value`,
		`{"scenario":"nope"}`: `nope`,
	} {
		status, body = do(t, "POST", srv.URL+"/api/v1/bins", []byte(bad))
		if status != 400 || !strings.Contains(string(body), says) || strings.Contains(string(body), "Go ") {
			t.Errorf("%s: got %d %s, want 400 saying %s", bad, status, body, says)
		}
	}
	status, body = do(t, "POST", srv.URL+"/api/v1/bins", nil)
	var anon bin
	mustJSON(t, body, &anon)
	if status != 201 || len(anon.Name) != 10 {
		t.Errorf("unnamed: got %d %s", status, body)
	}

	for i := 0; i < 3; i++ {
		do(t, "POST", srv.URL+"/b/orders", []byte(`{"n":1}`))
	}
	status, body = do(t, "GET", srv.URL+"/api/v1/bins", nil)
	var bins struct{ Items []bin }
	mustJSON(t, body, &bins)
	if status != 200 || len(bins.Items) != 2 {
		t.Fatalf("got %d %s", status, body)
	}
	for _, b := range bins.Items {
		if b.Name == "orders" && (b.CaptureCount != 3 || b.LastCaptureAt == nil) {
			t.Errorf("got %+v, want 3 captures and a last capture time", b)
		}
	}

	if status, _ = do(t, "DELETE", srv.URL+"/api/v1/bins/orders/captures", nil); status != 204 {
		t.Errorf("clear: got %d, want 204", status)
	}
	_, body = do(t, "GET", srv.URL+"/api/v1/bins/orders", nil)
	mustJSON(t, body, &b)
	if b.CaptureCount != 0 {
		t.Errorf("after clear: got %d captures, want 0", b.CaptureCount)
	}
	if status, _ = do(t, "DELETE", srv.URL+"/api/v1/bins/orders", nil); status != 204 {
		t.Errorf("delete: got %d, want 204", status)
	}
	for _, path := range []string{"/api/v1/bins/orders", "/api/v1/bins/orders/captures"} {
		if status, body = do(t, "GET", srv.URL+path, nil); status != 404 {
			t.Errorf("%s after delete: got %d %s, want 404", path, status, body)
		}
	}
	if status, body = do(t, "DELETE", srv.URL+"/api/v1/bins/orders", nil); status != 404 {
		t.Errorf("second delete: got %d %s, want 404", status, body)
	}
	if status, body = do(t, "PATCH", srv.URL+"/api/v1/bins", nil); status != 405 {
		t.Errorf("PATCH: got %d %s, want 405", status, body)
	}
}

func TestListCaptures(t *testing.T) {
	srv := MustServe(t, nil)
	ctx := context.Background()
	for i := 1; i <= 7; i++ {
		c := &inbox.Capture{Bin: "page", Kind: inbox.KindHTTP, Method: "POST", Path: fmt.Sprintf("/b/page/%d", i),
			Headers: []inbox.Header{{"X-N", strconv.Itoa(i)}}, Body: []byte(fmt.Sprintf(`{"n":%d,"pct":"50%%"}`, i)),
			ReceivedAt: time.Now()}
		if i == 7 {
			c.Kind, c.Path = inbox.KindEmail, "mail"
			c.Body = []byte("Subject: needle in a message")
		}
		if err := srv.Store.Add(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var ids []int64
	next := ""
	for page := 0; page < 10; page++ {
		url := srv.URL + "/api/v1/bins/page/captures?limit=3"
		if next != "" {
			url += "&before=" + next
		}
		_, body := do(t, "GET", url, nil)
		var l captureList
		mustJSON(t, body, &l)
		for _, c := range l.Items {
			ids = append(ids, c.ID)
		}
		if l.Next == nil {
			break
		}
		next = *l.Next
	}
	if fmt.Sprint(ids) != "[7 6 5 4 3 2 1]" {
		t.Errorf("got ids %v, want 7 down to 1", ids)
	}
	for _, tt := range []struct {
		query string
		want  string
	}{
		{"kind=email", "[7]"},
		{"kind=http&limit=2", "[6 5]"},
		{"q=%2Fpage%2F3", "[3]"},          // path
		{"q=x-n", "[7 6 5 4 3 2 1]"},      // header name, any case
		{"q=%22n%22%3A4", "[4]"},          // body
		{"q=NEEDLE", "[7]"},               // body, any case
		{"q=50%25", "[6 5 4 3 2 1]"},      // a literal %, not a wildcard
		{"q=_", "[]"},                     // a literal _, not a wildcard
		{"before=3", "[2 1]"},             // cursor
		{"q=nothing-like-this", "[]"},     // no match
		{"kind=http&q=%22n%22%3A7", "[]"}, // both must hold
	} {
		status, body := do(t, "GET", srv.URL+"/api/v1/bins/page/captures?"+tt.query, nil)
		var l captureList
		mustJSON(t, body, &l)
		var got []int64
		for _, c := range l.Items {
			got = append(got, c.ID)
		}
		if status != 200 || fmt.Sprint(got) != tt.want {
			t.Errorf("%s: got %d %v, want %s", tt.query, status, got, tt.want)
		}
	}
	for _, bad := range []string{"limit=0", "limit=abc", "limit=1001", "limit=-1", "before=x", "kind=smtp", "limit=1e3"} {
		status, body := do(t, "GET", srv.URL+"/api/v1/bins/page/captures?"+bad, nil)
		var e apiError
		mustJSON(t, body, &e)
		if status != 400 || !strings.Contains(e.Error.Message, strings.Split(bad, "=")[0]) {
			t.Errorf("%s: got %d %s, want 400 naming the parameter", bad, status, body)
		}
	}
	if status, body := do(t, "GET", srv.URL+"/api/v1/bins/page/captures/999", nil); status != 404 {
		t.Errorf("unknown capture: got %d %s", status, body)
	}
	if status, body := do(t, "GET", srv.URL+"/api/v1/bins/page/captures/abc", nil); status != 400 {
		t.Errorf("bad capture id: got %d %s", status, body)
	}
}

func TestNextCaptureLongPoll(t *testing.T) {
	srv := MustServe(t, nil)
	do(t, "POST", srv.URL+"/b/ci", []byte("first"))
	got := make(chan capture, 1)
	go func() {
		_, body := do(t, "GET", srv.URL+"/api/v1/bins/ci/captures/next?after=1&q=wanted&timeout=10s", nil)
		var c capture
		json.Unmarshal(body, &c)
		got <- c
	}()
	time.Sleep(50 * time.Millisecond)
	do(t, "POST", srv.URL+"/b/ci", []byte("not this one"))
	do(t, "POST", srv.URL+"/b/ci", []byte("the wanted one"))
	select {
	case c := <-got:
		if c.Body == nil || *c.Body != "the wanted one" {
			t.Errorf("got %+v, want the wanted one", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not return")
	}

	start := time.Now()
	status, body := do(t, "GET", srv.URL+"/api/v1/bins/ci/captures/next?after=100&timeout=100ms", nil)
	if status != 408 || time.Since(start) > 5*time.Second {
		t.Errorf("timeout: got %d %s after %s, want 408", status, body, time.Since(start))
	}
	for _, bad := range []string{"timeout=forever", "timeout=-1s", "timeout=11m", "after=x"} {
		if status, body := do(t, "GET", srv.URL+"/api/v1/bins/ci/captures/next?"+bad, nil); status != 400 {
			t.Errorf("%s: got %d %s, want 400", bad, status, body)
		}
	}
	// A bin that does not exist yet is waited for.
	go func() {
		time.Sleep(50 * time.Millisecond)
		do(t, "POST", srv.URL+"/b/later", []byte("hello"))
	}()
	if status, body := do(t, "GET", srv.URL+"/api/v1/bins/later/captures/next?timeout=10s", nil); status != 200 {
		t.Errorf("unknown bin: got %d %s, want 200", status, body)
	}
}

func TestReplay(t *testing.T) {
	var (
		mu   sync.Mutex
		seen *http.Request
		body []byte
	)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen, body = r, must(io.ReadAll(r.Body))
		w.Header().Set("X-Target", "yes")
		w.WriteHeader(202)
		io.WriteString(w, "accepted")
	}))
	defer target.Close()
	srv := MustServe(t, nil)
	do(t, "PATCH", srv.URL+"/b/rp/x?y=1", []byte(`{"a":1}`), "X-Sig", "abc", "Content-Type", "application/json")

	status, out := do(t, "POST", srv.URL+"/api/v1/bins/rp/captures/1/replay", []byte(`{"url":"`+target.URL+`/hook"}`))
	var res struct {
		Status  int
		Body    string
		Headers [][2]string
	}
	mustJSON(t, out, &res)
	if status != 200 || res.Status != 202 || res.Body != "accepted" {
		t.Fatalf("got %d %s", status, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen.Method != "PATCH" || seen.URL.Path != "/hook" || seen.Header.Get("X-Sig") != "abc" || string(body) != `{"a":1}` {
		t.Errorf("target saw %s %s %v %q", seen.Method, seen.URL, seen.Header, body)
	}
	for _, bad := range []string{`{"url":"ftp://x"}`, `{"url":"/relative"}`, `{}`, `{"url":1}`} {
		if status, out := do(t, "POST", srv.URL+"/api/v1/bins/rp/captures/1/replay", []byte(bad)); status != 400 {
			t.Errorf("%s: got %d %s, want 400", bad, status, out)
		}
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if status, out := do(t, "POST", srv.URL+"/api/v1/bins/rp/captures/1/replay", []byte(`{"url":"`+closed.URL+`"}`)); status != 502 {
		t.Errorf("refused: got %d %s, want 502", status, out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestExportHAR(t *testing.T) {
	srv := MustServe(t, nil)
	do(t, "POST", srv.URL+"/b/h/one?a=1&b=x%20y", []byte(`{"x":1}`), "Content-Type", "application/json", "Cookie", "s=1; t=2")
	do(t, "PUT", srv.URL+"/b/h/two", []byte{0xff, 0x00})
	if err := srv.Store.Add(context.Background(), &inbox.Capture{Bin: "h", Kind: inbox.KindEmail, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	status, body := do(t, "GET", srv.URL+"/api/v1/bins/h/export.har", nil)
	var har struct {
		Log struct {
			Version string
			Entries []struct {
				Request struct {
					Method      string
					URL         string
					Headers     []struct{ Name, Value string }
					QueryString []struct{ Name, Value string }
					Cookies     []struct{ Name, Value string }
					PostData    struct {
						MimeType, Text string
						Encoding       string `json:"_encoding"`
					}
				}
				Response struct{ Status int }
			}
		}
	}
	mustJSON(t, body, &har)
	if status != 200 || har.Log.Version != "1.2" || len(har.Log.Entries) != 2 {
		t.Fatalf("got %d %s", status, body)
	}
	e := har.Log.Entries[0].Request
	if e.Method != "POST" || !strings.HasSuffix(e.URL, "/b/h/one?a=1&b=x%20y") || e.PostData.Text != `{"x":1}` ||
		e.PostData.MimeType != "application/json" || len(e.QueryString) != 2 || e.QueryString[1].Value != "x y" || len(e.Cookies) != 2 {
		t.Errorf("got %+v", e)
	}
	if p := har.Log.Entries[1].Request.PostData; p.Encoding != "base64" || p.Text != "/wA=" {
		t.Errorf("binary body: got %+v", p)
	}
	if har.Log.Entries[0].Response.Status != 200 {
		t.Errorf("got response %d, want 200", har.Log.Entries[0].Response.Status)
	}
}

// Many clients at once: every capture is acknowledged only once stored,
// with ids unique.
func TestConcurrentCaptures(t *testing.T) {
	srv := MustServe(t, nil)
	const clients, each = 300, 4
	var wg sync.WaitGroup
	ids := make(chan string, clients*each)
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				resp, err := http.Post(srv.URL+"/b/many", "text/plain", strings.NewReader("x"))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ids <- resp.Header.Get("Callbin-Capture-Id")
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] || id == "" {
			t.Fatalf("capture id %q twice or empty", id)
		}
		seen[id] = true
	}
	b, err := srv.Store.FindBin(context.Background(), "many")
	if err != nil {
		t.Fatal(err)
	}
	if b.CaptureCount != clients*each || len(seen) != clients*each {
		t.Errorf("got %d stored, %d acknowledged, want %d", b.CaptureCount, len(seen), clients*each)
	}
}
