package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestHubFiltersByBin(t *testing.T) {
	h := &Hub{}
	srv := MustServeHub(t, h)
	all := MustSubscribe(t, h, srv, "")
	binA := MustSubscribe(t, h, srv, "bin=a")
	binB := MustSubscribe(t, h, srv, "bin=b")

	msgs := []Message{
		captureEvent("a", 1),
		captureEvent("b", 2),
		{Data: map[string]any{"type": "attempt", "task_id": "t1", "attempt": 1, "status": 500}},
		{Data: map[string]any{"type": "task", "task_id": "t1", "status": "completed"}},
		{Bin: "a", Data: map[string]any{"type": "bin", "action": "created", "name": "a"}},
		captureEvent("a", 3),
		{Bin: "a", Data: map[string]any{"type": "end"}},
		{Bin: "b", Data: map[string]any{"type": "end"}},
	}
	for _, m := range msgs {
		h.Publish(m)
	}

	tests := []struct {
		name string
		conn *websocket.Conn
		ends int
		want []string
	}{
		{"all", all, 2, []string{"capture:1", "capture:2", "attempt", "task", "bin", "capture:3", "end", "end"}},
		{"bin=a", binA, 1, []string{"capture:1", "bin", "capture:3", "end"}},
		{"bin=b", binB, 1, []string{"capture:2", "end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for ends := 0; ends < tt.ends; {
				ev := readEvent(t, tt.conn)
				s := ev.typ()
				if s == "capture" {
					s = fmt.Sprintf("capture:%d", ev.id())
				}
				if s == "end" {
					ends++
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("events: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHubResume(t *testing.T) {
	store := &fakeStore{}
	for i := int64(1); i <= 10; i++ {
		bin := "a"
		if i%3 == 0 {
			bin = "b"
		}
		store.add(captureEvent(bin, i))
	}
	tests := []struct {
		name  string
		query string
		page  int
		want  []int64
	}{
		{"all since 4", "since=4", 0, []int64{5, 6, 7, 8, 9, 10}},
		{"all since 4, pages of 2", "since=4", 2, []int64{5, 6, 7, 8, 9, 10}},
		{"bin a since 0, pages of 3", "bin=a&since=0", 3, []int64{1, 2, 4, 5, 7, 8, 10}},
		{"bin b since 3", "bin=b&since=3", 0, []int64{6, 9}},
		{"since the last", "since=10", 0, nil},
		{"no since: live only", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Hub{Backlog: store.backlog, BacklogPage: tt.page}
			srv := MustServeHub(t, h)
			conn := MustSubscribe(t, h, srv, tt.query)
			// A live capture after the backlog, in a bin every case wants.
			live := captureEvent("a", 11)
			if strings.Contains(tt.query, "bin=b") {
				live = captureEvent("b", 11)
			}
			h.Publish(live)
			want := append(append([]int64(nil), tt.want...), 11)
			var got []int64
			for len(got) < len(want) {
				got = append(got, readEvent(t, conn).id())
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("capture ids: got %v, want %v", got, want)
			}
		})
	}
}

// A capture committed while the backlog is read is sent once: by the
// backlog if the query saw it, otherwise live.
func TestHubResumeRace(t *testing.T) {
	for _, seen := range []bool{true, false} {
		t.Run(fmt.Sprintf("backlog sees it %v", seen), func(t *testing.T) {
			store := &fakeStore{}
			for i := int64(1); i <= 3; i++ {
				store.add(captureEvent("a", i))
			}
			var h *Hub
			published4 := make(chan struct{})
			h = &Hub{Backlog: func(ctx context.Context, bin string, since int64, limit int) ([]Message, error) {
				before, err := store.backlog(ctx, bin, since, limit)
				if store.lastID() == 3 {
					// Capture 4 commits and is published while we read.
					store.add(captureEvent("a", 4))
					h.Publish(captureEvent("a", 4))
					close(published4)
				}
				if seen {
					return store.backlog(ctx, bin, since, limit)
				}
				return before, err
			}}
			srv := MustServeHub(t, h)
			conn := MustSubscribe(t, h, srv, "since=1")
			// Captures are committed and published in id order: 5 after 4
			// has been published, not merely committed.
			select {
			case <-published4:
			case <-time.After(10 * time.Second):
				t.Fatal("capture 4 was never published: the backlog was not read")
			}
			store.add(captureEvent("a", 5))
			h.Publish(captureEvent("a", 5))
			var got []int64
			for len(got) < 4 {
				got = append(got, readEvent(t, conn).id())
			}
			if fmt.Sprint(got) != "[2 3 4 5]" {
				t.Errorf("capture ids: got %v, want [2 3 4 5]", got)
			}
		})
	}
}

// Subscribers that resume while captures keep arriving get every id after
// since exactly once, in order.
func TestHubResumeUnderLoad(t *testing.T) {
	const total = 1500
	store := &fakeStore{}
	h := &Hub{Backlog: store.backlog, BacklogPage: 50, BufferSize: 2 * total}
	srv := MustServeHub(t, h)

	// The producer commits, then publishes, as inbox does.
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		for i := int64(1); i <= total; i++ {
			store.add(captureEvent("a", i))
			h.Publish(captureEvent("a", i))
			if i%10 == 0 {
				time.Sleep(time.Millisecond) // let subscribers connect mid-stream
			}
		}
	}()
	// Keep one subscriber so Publish does not take its no-subscriber path.
	MustSubscribe(t, h, srv, "bin=none")
	close(start)

	type result struct {
		since int64
		err   error
	}
	results := make(chan result, 3)
	for k := 0; k < 3; k++ {
		waitFor(t, "captures stored", func() bool { return store.lastID() >= int64(k+1)*300 })
		since := store.lastID()
		conn := MustDial(t, srv, fmt.Sprintf("since=%d", since))
		go func() {
			want := since + 1
			for want <= total {
				ev, err := tryReadEvent(conn, 10*time.Second)
				if err != nil {
					results <- result{since, fmt.Errorf("read at %d: %w", want, err)}
					return
				}
				if ev.id() != want {
					results <- result{since, fmt.Errorf("got capture %d, want %d", ev.id(), want)}
					return
				}
				want++
			}
			results <- result{since, nil}
		}()
	}
	wg.Wait()
	for k := 0; k < 3; k++ {
		r := <-results
		if r.err != nil {
			t.Errorf("subscriber since %d: %v", r.since, r.err)
		}
	}
}

func TestHubSinceWithoutBacklog(t *testing.T) {
	h := &Hub{}
	srv := MustServeHub(t, h)
	conn := MustSubscribe(t, h, srv, "since=5")
	h.Publish(captureEvent("a", 4))
	h.Publish(captureEvent("a", 5))
	h.Publish(Message{Data: map[string]any{"type": "task", "task_id": "t"}})
	h.Publish(captureEvent("a", 6))
	if ev := readEvent(t, conn); ev.typ() != "task" {
		t.Fatalf("first event: got %v, want the task event (captures 4 and 5 skipped)", ev)
	}
	if ev := readEvent(t, conn); ev.id() != 6 {
		t.Fatalf("second event: got %v, want capture 6", ev)
	}
}

// A subscriber whose since is beyond the stored head (its page knew a
// database that was replaced) resumes from the head with Head, and would
// skip every capture up to its since without it.
func TestHubSinceBeyondHead(t *testing.T) {
	for _, tt := range []struct {
		name string
		head func(context.Context) (int64, error)
		want int64
	}{
		{"with head", nil, 4},
		{"head fails", func(context.Context) (int64, error) { return 0, errors.New("database is locked") }, 101},
		{"without head", nil, 101},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := &fakeStore{}
			for i := int64(1); i <= 3; i++ {
				store.add(captureEvent("a", i))
			}
			h := &Hub{Backlog: store.backlog, Head: tt.head}
			if tt.name == "with head" {
				h.Head = func(context.Context) (int64, error) { return store.lastID(), nil }
			}
			srv := MustServeHub(t, h)
			conn := MustSubscribe(t, h, srv, "since=100")
			// The resume has read the head and the backlog.
			waitFor(t, "backlog read", func() bool {
				store.mu.Lock()
				defer store.mu.Unlock()
				return store.calls > 0
			})
			for _, id := range []int64{4, 101} {
				store.add(captureEvent("a", id))
				h.Publish(captureEvent("a", id))
			}
			if got := readEvent(t, conn).id(); got != tt.want {
				t.Errorf("first capture: got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestHubBacklogFailureCloses(t *testing.T) {
	h := &Hub{Backlog: func(context.Context, string, int64, int) ([]Message, error) {
		return nil, errors.New("database is locked")
	}}
	srv := MustServeHub(t, h)
	conn := MustDial(t, srv, "since=1")
	err := readUntilClose(t, conn)
	if got := closeCode(err); got != websocket.CloseInternalServerErr {
		t.Fatalf("close: got %v (code %d), want code %d", err, got, websocket.CloseInternalServerErr)
	}
	waitFor(t, "client gone", func() bool { return h.Clients() == 0 })
}

func TestHubOriginCheck(t *testing.T) {
	h := &Hub{}
	srv := MustServeHub(t, h)
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols},
		{"http://" + host, http.StatusSwitchingProtocols},
		{"http://evil.example", http.StatusForbidden},
		{"http://" + host + ".evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("origin %q", tt.origin), func(t *testing.T) {
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(streamURL(srv, ""), hdr)
			if conn != nil {
				conn.Close()
			}
			if resp == nil {
				t.Fatalf("dial: got %v and no response, want status %d", err, tt.want)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status: got %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusForbidden {
				var body struct {
					Error struct{ Code, Message string }
				}
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatalf("error body: got %v, want JSON", err)
				}
				if body.Error.Code != "forbidden_origin" {
					t.Errorf("error code: got %q, want %q", body.Error.Code, "forbidden_origin")
				}
			}
		})
	}
}

func TestHubBadRequests(t *testing.T) {
	h := &Hub{}
	srv := MustServeHub(t, h)
	tests := []struct {
		name     string
		method   string
		query    string
		upgrade  bool
		status   int
		code     string
		contains string
	}{
		{"since not a number", "GET", "since=abc", true, 400, "bad_request", "since"},
		{"since negative", "GET", "since=-1", true, 400, "bad_request", "since"},
		{"since twice", "GET", "since=1&since=2", true, 400, "bad_request", "since"},
		{"bin empty", "GET", "bin=", true, 400, "bad_request", "bin"},
		{"bin twice", "GET", "bin=a&bin=b", true, 400, "bad_request", "bin"},
		{"bin with slash", "GET", "bin=a%2Fb", true, 400, "bad_request", "bin"},
		{"bin too long", "GET", "bin=" + strings.Repeat("x", maxBinParam+1), true, 400, "bad_request", "bin"},
		{"not a websocket", "GET", "", false, 400, "not_websocket", "websocket"},
		{"POST", "POST", "", true, 405, "method_not_allowed", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+"/api/v1/stream?"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status: got %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
				t.Errorf("content type: got %q, want application/json", got)
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: got %v, want JSON", err)
			}
			if body.Error.Code != tt.code || !strings.Contains(body.Error.Message, tt.contains) {
				t.Errorf("error: got %+v, want code %q and a message about %q", body.Error, tt.code, tt.contains)
			}
		})
	}
	if n := h.Clients(); n != 0 {
		t.Errorf("clients after refused requests: got %d, want 0", n)
	}
}

func TestHubDropsSlowSubscriber(t *testing.T) {
	h := &Hub{BufferSize: 16}
	srv := MustServeHub(t, h)
	stalled := MustDial(t, srv, "")
	waitFor(t, "stalled subscriber registered", func() bool { return h.Clients() == 1 })
	healthy := MustSubscribe(t, h, srv, "")

	// The healthy subscriber reads everything; the stalled one reads nothing.
	got := make(chan int64, 64)
	go func() {
		defer close(got)
		for {
			ev, err := tryReadEvent(healthy, 10*time.Second)
			if err != nil {
				return
			}
			got <- ev.id()
		}
	}()

	pad := strings.Repeat("x", 8<<10)
	var slowest time.Duration
	sent := int64(0)
	for sent < 8000 && h.Dropped() == 0 {
		// Bursts below the buffer size, then wait for the healthy reader:
		// only the stalled subscriber can fall behind.
		for i := 0; i < 8; i++ {
			sent++
			m := captureEvent("a", sent)
			m.Data.(map[string]any)["pad"] = pad
			t0 := time.Now()
			h.Publish(m)
			slowest = max(slowest, time.Since(t0))
		}
		for want := sent - 7; want <= sent; want++ {
			select {
			case id, ok := <-got:
				if !ok || id != want {
					t.Fatalf("healthy subscriber: got capture %d (open %v), want %d", id, ok, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("healthy subscriber: nothing after capture %d", want-1)
			}
		}
	}
	if h.Dropped() != 1 {
		t.Fatalf("dropped after %d events of 8 KiB: got %d, want 1 (the stalled subscriber)", sent, h.Dropped())
	}
	if n := h.Clients(); n != 1 {
		t.Errorf("clients: got %d, want 1 (the healthy one)", n)
	}
	t.Logf("stalled subscriber dropped after %d events; slowest Publish %v", sent, slowest)

	// Once it reads, the stalled subscriber gets what was queued and then
	// the close frame saying why.
	err := readUntilClose(t, stalled)
	if got := closeCode(err); got != websocket.CloseTryAgainLater {
		t.Errorf("stalled subscriber close: got %v (code %d), want code %d", err, got, websocket.CloseTryAgainLater)
	}
}

func TestHubPings(t *testing.T) {
	h := &Hub{PingInterval: 20 * time.Millisecond, PongWait: 500 * time.Millisecond}
	srv := MustServeHub(t, h)

	// A subscriber that reads answers pings (gorilla's default handler)
	// and stays connected well past PongWait.
	live := MustSubscribe(t, h, srv, "")
	var mu sync.Mutex
	pings := 0
	live.SetPingHandler(func(data string) error {
		mu.Lock()
		pings++
		mu.Unlock()
		return live.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	done := make(chan error, 1)
	go func() {
		_, err := tryReadEvent(live, 10*time.Second)
		done <- err
	}()

	// A subscriber that never reads never answers, and is dropped. It is
	// registered before its dial returns.
	MustDial(t, srv, "")
	waitFor(t, "mute subscriber dropped", func() bool { return h.Clients() == 1 })

	// Let the live one outlive several PongWaits, then end it with an event.
	time.Sleep(1500 * time.Millisecond)
	h.Publish(Message{Data: map[string]any{"type": "end"}})
	if err := <-done; err != nil {
		t.Fatalf("live subscriber: got %v, want the event", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if pings < 5 {
		t.Errorf("pings in 1.5s at 20ms: got %d, want at least 5", pings)
	}
}

func TestHubReadLimit(t *testing.T) {
	h := &Hub{ReadLimit: 64}
	srv := MustServeHub(t, h)
	conn := MustSubscribe(t, h, srv, "")
	if err := conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", 32))); err != nil {
		t.Fatal(err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", 1024))); err != nil {
		t.Fatal(err)
	}
	err := readUntilClose(t, conn)
	if got := closeCode(err); got != websocket.CloseMessageTooBig {
		t.Fatalf("close: got %v (code %d), want code %d", err, got, websocket.CloseMessageTooBig)
	}
	waitFor(t, "client gone", func() bool { return h.Clients() == 0 })
}

func TestHubClose(t *testing.T) {
	h := &Hub{Logger: testLogger(t)}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/stream", h)
	srv := MustServe(t, mux)
	a := MustSubscribe(t, h, srv, "")
	b := MustSubscribe(t, h, srv, "bin=x")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatalf("close: got %v, want nil", err)
	}
	for name, conn := range map[string]*websocket.Conn{"all": a, "bin=x": b} {
		if got := closeCode(readUntilClose(t, conn)); got != websocket.CloseGoingAway {
			t.Errorf("%s close code: got %d, want %d", name, got, websocket.CloseGoingAway)
		}
	}
	if n := h.Clients(); n != 0 {
		t.Errorf("clients: got %d, want 0", n)
	}
	h.Publish(captureEvent("x", 1)) // must not panic on closed buffers

	_, resp, err := websocket.DefaultDialer.Dial(streamURL(srv, ""), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Errorf("dial after close: got %v (status %d), want status 503", err, status)
	}
	if err := h.Close(ctx); err != nil {
		t.Errorf("second close: got %v, want nil", err)
	}
}

// When the fan-out falls a whole queue behind, Publish still returns at
// once, and every subscriber is told to resume rather than silently missing
// the lost event.
func TestHubFanOutOverflow(t *testing.T) {
	h := &Hub{queueSize: 4}
	srv := MustServeHub(t, h)
	a := MustSubscribe(t, h, srv, "")
	b := MustSubscribe(t, h, srv, "bin=x")

	h.mu.Lock() // the fan-out stalls on its next delivery
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); i <= 20; i++ {
			h.Publish(captureEvent("x", i))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		h.mu.Unlock()
		t.Fatal("Publish blocked while the fan-out was stalled")
	}
	h.mu.Unlock()

	for name, conn := range map[string]*websocket.Conn{"all": a, "bin=x": b} {
		if got := closeCode(readUntilClose(t, conn)); got != websocket.CloseTryAgainLater {
			t.Errorf("%s: got close code %d, want %d", name, got, websocket.CloseTryAgainLater)
		}
	}
	if got := h.Dropped(); got != 2 {
		t.Errorf("dropped: got %d, want 2", got)
	}
	// New subscribers get events again, once the fan-out has caught up
	// (publishing into a queue still full would overflow it again). The
	// burst's last event may still be on its way and reach the new
	// subscriber first: it was published before it connected, and was
	// never sent to it.
	waitFor(t, "the fan-out queue drained", func() bool { return len(h.queue) == 0 })
	c := MustSubscribe(t, h, srv, "")
	h.Publish(captureEvent("x", 21))
	for prev := int64(0); ; {
		ev := readEvent(t, c)
		id := ev.id()
		if id == 21 {
			break
		}
		if id <= prev || id > 20 {
			t.Fatalf("after the overflow: got capture %d after %d, want leftovers of the burst in order, then 21", id, prev)
		}
		prev = id
	}
}

// Close does not wait WriteWait for a subscriber whose socket is full.
func TestHubCloseWithStalledSubscriber(t *testing.T) {
	h := &Hub{BufferSize: 8192, WriteWait: time.Minute, Logger: testLogger(t)}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/stream", h)
	srv := MustServe(t, mux)
	stalled := MustSubscribe(t, h, srv, "")
	pad := strings.Repeat("x", 16<<10)
	// 64 MiB: more than the socket buffers hold, less than the buffer.
	for i := int64(1); i <= 4096; i++ {
		m := captureEvent("a", i)
		m.Data.(map[string]any)["pad"] = pad
		h.Publish(m)
	}
	if h.Dropped() != 0 {
		t.Fatalf("dropped: got %d, want 0 (the buffer holds every event)", h.Dropped())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatalf("close with a stalled subscriber: got %v, want nil well before WriteWait", err)
	}
	_ = stalled
}

func TestHubRefusesBadEvents(t *testing.T) {
	h := &Hub{}
	srv := MustServeHub(t, h)
	conn := MustSubscribe(t, h, srv, "")
	bad := []any{
		nil,
		"capture",
		[]any{map[string]any{"type": "capture"}},
		map[string]any{"kind": "no type"},
		map[string]any{"type": 7},
		map[string]any{"type": ""},
		map[string]any{"type": "x", "f": func() {}},
	}
	for _, d := range bad {
		h.Publish(Message{Data: d})
	}
	h.Publish(Message{Data: map[string]any{"type": "good"}})
	if ev := readEvent(t, conn); ev.typ() != "good" {
		t.Fatalf("first event: got %v, want the good one (every bad one refused)", ev)
	}
}

func TestNewFrame(t *testing.T) {
	type typed struct {
		Type string `json:"type"`
		N    int    `json:"n"`
	}
	tests := []struct {
		name string
		data any
		ok   bool
	}{
		{"struct", typed{Type: "capture", N: 1}, true},
		{"map", map[string]any{"type": "bin", "action": "created"}, true},
		{"raw", json.RawMessage(`{"type":"task"}`), true},
		{"nil", nil, false},
		{"number", 3, false},
		{"array", []int{1}, false},
		{"no type", typed{}, false},
		{"type not a string", map[string]any{"type": true}, false},
		{"cannot marshal", map[string]any{"type": "x", "c": make(chan int)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newFrame(Message{Data: tt.data})
			if tt.ok && err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadEvent) {
				t.Fatalf("got %v, want ErrBadEvent", err)
			}
		})
	}
}

// Publishers, subscribers coming and going, and Close, all at once (run
// with -race).
func TestHubConcurrent(t *testing.T) {
	h := &Hub{BufferSize: 4096}
	srv := MustServeHub(t, h)
	steady := MustSubscribe(t, h, srv, "")

	const publishers, each = 4, 200
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				h.Publish(Message{Bin: "a", Data: map[string]any{"type": "tick", "p": p, "i": i}})
			}
		}()
	}
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 5; k++ {
				conn, _, err := websocket.DefaultDialer.Dial(streamURL(srv, "bin=a"), nil)
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				_, _ = tryReadEvent(conn, 50*time.Millisecond)
				conn.Close()
			}
		}()
	}
	// Each publisher's events reach the steady subscriber in order.
	next := make([]int, publishers)
	for n := 0; n < publishers*each; n++ {
		ev := readEvent(t, steady)
		p, i := int(ev["p"].(float64)), int(ev["i"].(float64))
		if i != next[p] {
			t.Fatalf("publisher %d: got event %d, want %d", p, i, next[p])
		}
		next[p]++
	}
	wg.Wait()
}

func FuzzParseSubscription(f *testing.F) {
	for _, q := range []string{"", "bin=a", "since=5", "bin=a&since=0", "since=-1", "bin=&since=x", "bin=a%2F", "since=99999999999999999999", "bin=%ff"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		sub, err := parseSubscription(q)
		if err != nil {
			if !errors.Is(err, ErrBadSubscription) {
				t.Fatalf("error %v does not wrap ErrBadSubscription", err)
			}
			return
		}
		if sub.since < 0 || len(sub.bin) > maxBinParam || strings.Contains(sub.bin, "/") {
			t.Fatalf("accepted %q as %+v", raw, sub)
		}
		// What was accepted reads back the same.
		again := url.Values{}
		if sub.bin != "" {
			again.Set("bin", sub.bin)
		}
		if sub.hasSince {
			again.Set("since", fmt.Sprint(sub.since))
		}
		sub2, err := parseSubscription(again)
		if err != nil || sub2 != sub {
			t.Fatalf("round trip of %+v: got %+v, %v", sub, sub2, err)
		}
	})
}

// An event published as soon as the client has the handshake's answer
// reaches it: a page that says "live" on the socket's open event misses
// nothing after it. The subscriber is registered before the 101 is sent.
func TestHubLiveFromTheHandshake(t *testing.T) {
	h := &Hub{Logger: testLogger(t)}
	srv := MustServeHub(t, h)
	for i := int64(1); i <= 200; i++ {
		conn := MustDial(t, srv, "")
		h.Publish(captureEvent("a", i))
		ev, err := tryReadEvent(conn, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: the event published right after the handshake: %v", i, err)
		}
		if ev.id() != i {
			t.Fatalf("connection %d: got capture %d, want %d", i, ev.id(), i)
		}
		conn.Close()
	}
}
