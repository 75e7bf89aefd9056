package run

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// streamEvent is the part of a live event the runner reads: attempt and
// task events of the sender.
type streamEvent struct {
	Type              string          `json:"type"`
	TaskID            string          `json:"task_id"`
	Event             string          `json:"event"`
	Attempt           int             `json:"attempt"`
	URL               string          `json:"url"`
	Status            json.RawMessage `json:"status"` // attempt: a code; task: the task status
	Error             string          `json:"error"`
	ErrorClass        string          `json:"error_class"`
	LatencyMS         float64         `json:"latency_ms"`
	State             string          `json:"state"`
	NextAttemptAt     *time.Time      `json:"next_attempt_at"`
	At                time.Time       `json:"at"`
	CallbackSucceeded *bool           `json:"callback_succeeded"`
}

// maxPending bounds the events kept for tasks not known yet (an error
// callback may be attempted before its creation call returns).
const maxPending = 1000

// watcher prints the attempts of the run's tasks as the stream brings
// them, and wakes the task that an event concerns.
type watcher struct {
	out  *printer
	conn *websocket.Conn
	done chan struct{}

	mu      sync.Mutex
	tasks   map[string]int           // task id -> index in the file
	wake    map[string]chan struct{} // task id -> its wake-up
	pending []streamEvent            // events of task ids not known yet
}

// watch subscribes to the live stream. It returns nil (after printing a
// note) when the stream cannot be opened: the run goes on without live
// output, polling alone.
func watch(ctx context.Context, base, token string, out *printer) *watcher {
	u, err := url.Parse(base)
	if err != nil {
		out.printf("    note: no live stream (%v)\n", err)
		return nil
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/stream"
	if token != "" {
		u.RawQuery = url.Values{"access_token": {token}}.Encode()
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Proxy: http.ProxyFromEnvironment}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, resp, err := d.DialContext(dctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		out.printf("    note: no live stream, attempts are shown at the end (%v)\n", err)
		return nil
	}
	conn.SetReadLimit(1 << 20)
	w := &watcher{out: out, conn: conn, done: make(chan struct{}),
		tasks: map[string]int{}, wake: map[string]chan struct{}{}}
	go w.read()
	return w
}

// close ends the subscription and waits for the reader.
func (w *watcher) close() {
	if w == nil {
		return
	}
	w.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	w.conn.Close()
	<-w.done
}

// add makes a task known, prints what arrived for it before, and returns
// the channel its events wake.
func (w *watcher) add(id string, index int) <-chan struct{} {
	ch := make(chan struct{}, 1)
	if w == nil {
		return ch
	}
	w.mu.Lock()
	w.tasks[id] = index
	w.wake[id] = ch
	var early []streamEvent
	kept := w.pending[:0]
	for _, ev := range w.pending {
		if ev.TaskID == id {
			early = append(early, ev)
		} else {
			kept = append(kept, ev)
		}
	}
	w.pending = kept
	w.mu.Unlock()
	for _, ev := range early {
		w.show(index, ev)
	}
	return ch
}

func (w *watcher) read() {
	defer close(w.done)
	for {
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			return
		}
		var ev streamEvent
		if json.Unmarshal(data, &ev) != nil || ev.TaskID == "" || (ev.Type != "attempt" && ev.Type != "task") {
			continue
		}
		w.mu.Lock()
		index, known := w.tasks[ev.TaskID]
		wake := w.wake[ev.TaskID]
		if !known && len(w.pending) < maxPending {
			w.pending = append(w.pending, ev)
		}
		w.mu.Unlock()
		if !known {
			continue
		}
		w.show(index, ev)
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// show prints one event of task index.
func (w *watcher) show(index int, ev streamEvent) {
	if ev.Type == "task" {
		if ev.CallbackSucceeded != nil {
			w.out.printf("    task %d: callback_succeeded %t\n", index, *ev.CallbackSucceeded)
		}
		return
	}
	var code int
	json.Unmarshal(ev.Status, &code)
	var st *int
	if code != 0 {
		st = &code
	}
	var class *string
	if ev.ErrorClass != "" {
		class = &ev.ErrorClass
	}
	res := attemptResult(st, class, false)
	line := fmt.Sprintf("    task %d: %s attempt %d to %s: %s", index, ev.Event, ev.Attempt, ev.URL, res)
	if ev.Error != "" && ev.ErrorClass != "http_status" {
		line += " (" + clip(ev.Error, 100) + ")"
	}
	line += fmt.Sprintf(" in %s", time.Duration(ev.LatencyMS*float64(time.Millisecond)).Round(100*time.Microsecond))
	if ev.NextAttemptAt != nil {
		line += fmt.Sprintf(", next in %s", roundSpan(ev.NextAttemptAt.Sub(ev.At)))
	} else if ev.State != "" {
		line += ", " + ev.State
	}
	w.out.printf("%s\n", line)
}
