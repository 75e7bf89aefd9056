package frontend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers the routes the UI calls, with the SPEC's shapes, from
// memory, and publishes events to a real Hub, so that the UI can be driven
// in a browser before the real server is wired. It is test scaffolding, not
// a model of inbox or the sender.
type fakeAPI struct {
	hub *Hub

	mu        sync.Mutex
	bins      map[string]map[string]any
	captures  []map[string]any // ascending id
	tasks     map[string]map[string]any
	callbacks map[string][]map[string]any
	nextID    int64
	sinces    []int64 // ?since= of every resume the hub served
}

func newFakeAPI(tb testing.TB) (*fakeAPI, http.Handler) {
	f := &fakeAPI{
		bins:      map[string]map[string]any{},
		tasks:     map[string]map[string]any{},
		callbacks: map[string][]map[string]any{},
	}
	f.hub = &Hub{Logger: testLogger(tb), Backlog: f.backlog}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/stream", f.hub)
	mux.HandleFunc("GET /api/v1/bins", f.listBins)
	mux.HandleFunc("POST /api/v1/bins", f.createBin)
	mux.HandleFunc("GET /api/v1/bins/{bin}", f.getBin)
	mux.HandleFunc("DELETE /api/v1/bins/{bin}", f.deleteBin)
	mux.HandleFunc("PUT /api/v1/bins/{bin}/scenario", f.putScenario)
	mux.HandleFunc("GET /api/v1/bins/{bin}/captures", f.listCaptures)
	mux.HandleFunc("GET /api/v1/bins/{bin}/captures/{id}", f.getCapture)
	mux.HandleFunc("GET /v1/tasks", f.listTasks)
	mux.HandleFunc("GET /v1/task/{id}", f.getTask)
	mux.HandleFunc("GET /v1/task/{id}/callbacks", f.getCallbacks)
	mux.Handle("/", UI())
	return f, mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string, extra map[string]any) {
	e := map[string]any{"code": code, "message": msg}
	for k, v := range extra {
		e[k] = v
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func (f *fakeAPI) addBin(name string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addBinLocked(name)
}

func (f *fakeAPI) addBinLocked(name string) map[string]any {
	if b, ok := f.bins[name]; ok {
		return b
	}
	b := map[string]any{
		"name": name, "url": "http://127.0.0.1:8080/b/" + name, "email": name + "@callbin.local",
		"created_at": time.Now().UTC().Format(time.RFC3339Nano), "capture_count": 0, "last_capture_at": nil, "scenario": nil,
	}
	f.bins[name] = b
	return b
}

// addCapture stores c (an id is given) and then publishes its event, as
// inbox does after commit.
func (f *fakeAPI) addCapture(c map[string]any) int64 {
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	bin := c["bin"].(string)
	b := f.addBinLocked(bin)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	c["id"] = id
	c["received_at"] = now
	if c["kind"] == nil {
		c["kind"] = "http"
	}
	if c["reply"] == nil {
		c["reply"] = map[string]any{"status": 200}
	}
	f.captures = append(f.captures, c)
	b["capture_count"] = b["capture_count"].(int) + 1
	b["last_capture_at"] = now
	f.mu.Unlock()
	f.hub.Publish(captureMessage(c))
	return id
}

func captureMessage(c map[string]any) Message {
	return Message{Bin: c["bin"].(string), ID: c["id"].(int64), Data: map[string]any{
		"type": "capture", "bin": c["bin"], "id": c["id"], "kind": c["kind"], "method": c["method"],
		"path": c["path"], "size": c["size"], "received_at": c["received_at"], "reply": c["reply"],
	}}
}

func (f *fakeAPI) backlog(_ context.Context, bin string, since int64, limit int) ([]Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sinces = append(f.sinces, since)
	var out []Message
	for _, c := range f.captures {
		if c["id"].(int64) > since && (bin == "" || c["bin"] == bin) && len(out) < limit {
			out = append(out, captureMessage(c))
		}
	}
	return out, nil
}

func (f *fakeAPI) listBins(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	items := []map[string]any{}
	for _, b := range f.bins {
		items = append(items, b)
	}
	writeJSON(w, 200, map[string]any{"items": items, "next": nil})
}

func (f *fakeAPI) createBin(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name string }
	_ = json.NewDecoder(r.Body).Decode(&req)
	if req.Name == "" {
		req.Name = fmt.Sprintf("bin%d", time.Now().UnixNano()%100000)
	}
	b := f.addBin(req.Name)
	f.hub.Publish(Message{Bin: req.Name, Data: map[string]any{"type": "bin", "action": "created", "name": req.Name}})
	writeJSON(w, 201, b)
}

func (f *fakeAPI) getBin(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bins[r.PathValue("bin")]
	if !ok {
		apiError(w, 404, "not_found", "no bin "+r.PathValue("bin"), nil)
		return
	}
	writeJSON(w, 200, b)
}

func (f *fakeAPI) deleteBin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("bin")
	f.mu.Lock()
	delete(f.bins, name)
	f.captures = slices.DeleteFunc(f.captures, func(c map[string]any) bool { return c["bin"] == name })
	f.mu.Unlock()
	f.hub.Publish(Message{Bin: name, Data: map[string]any{"type": "bin", "action": "deleted", "name": name}})
	w.WriteHeader(http.StatusNoContent)
}

// putScenario refuses a script with "status: 999" at that line, the way
// the scenarios parser reports a bad field.
func (f *fakeAPI) putScenario(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	for i, line := range strings.Split(string(body), "\n") {
		if strings.Contains(line, "status: 999") {
			apiError(w, 400, "invalid_scenario", fmt.Sprintf("line %d: steps[0].status: 999 is not an HTTP status (100-599)", i+1),
				map[string]any{"line": i + 1, "field": "steps[0].status"})
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.addBinLocked(r.PathValue("bin"))
	b["scenario"] = string(body)
	writeJSON(w, 200, b)
}

func (f *fakeAPI) listCaptures(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	items := []map[string]any{}
	for i := len(f.captures) - 1; i >= 0; i-- {
		if c := f.captures[i]; c["bin"] == r.PathValue("bin") {
			items = append(items, c)
		}
	}
	writeJSON(w, 200, map[string]any{"items": items, "next": nil})
}

func (f *fakeAPI) getCapture(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.captures {
		if c["id"] == id && c["bin"] == r.PathValue("bin") {
			writeJSON(w, 200, c)
			return
		}
	}
	apiError(w, 404, "not_found", "no such capture", nil)
}

func (f *fakeAPI) checkBasic(w http.ResponseWriter, r *http.Request) bool {
	if _, _, ok := r.BasicAuth(); !ok {
		writeJSON(w, 401, map[string]any{"status_code": 401, "error": "basic auth required"})
		return false
	}
	return true
}

func (f *fakeAPI) listTasks(w http.ResponseWriter, r *http.Request) {
	if !f.checkBasic(w, r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	docs := []map[string]any{}
	for _, t := range f.tasks {
		docs = append(docs, t)
	}
	writeJSON(w, 200, map[string]any{"docs": docs, "total": len(docs), "limit": 50, "offset": 0, "has_more": false, "next_token": nil})
}

func (f *fakeAPI) getTask(w http.ResponseWriter, r *http.Request) {
	if !f.checkBasic(w, r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[r.PathValue("id")]
	if !ok {
		writeJSON(w, 404, map[string]any{"status_code": 404, "error": "no such task"})
		return
	}
	writeJSON(w, 200, t)
}

func (f *fakeAPI) getCallbacks(w http.ResponseWriter, r *http.Request) {
	if !f.checkBasic(w, r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, 200, map[string]any{"items": f.callbacks[r.PathValue("id")]})
}

// addTask adds a completed task whose callback failed at the given
// statuses (0 for a connection error) and then got the last one, on a
// schedule of about 1 s, 10 s, 100 s... apart.
func (f *fakeAPI) addTask(id, target string, statuses []int, next bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t0 := time.Now().Add(-3 * time.Hour)
	var attempts []map[string]any
	at := t0
	step := time.Second
	for i, st := range statuses {
		a := map[string]any{"n": i + 1, "at": at.UTC().Format(time.RFC3339Nano), "url": target, "latency_ms": 12 + i}
		if st == 0 {
			a["error"] = "connection refused"
		} else {
			a["status"] = st
		}
		attempts = append(attempts, a)
		at = at.Add(step)
		step *= 6
	}
	last := statuses[len(statuses)-1]
	d := map[string]any{"id": id + "-d1", "event": "task.completed", "target": target, "attempts": attempts, "next_attempt_at": nil}
	succeeded := any(nil)
	switch {
	case last >= 200 && last < 300:
		d["state"] = "succeeded"
		succeeded = true
	case next:
		d["state"] = "retrying"
		d["next_attempt_at"] = at.UTC().Format(time.RFC3339Nano)
	default:
		d["state"] = "failed"
		succeeded = false
	}
	f.callbacks[id] = []map[string]any{d}
	task := map[string]any{
		"task_id": id, "type": "categorization", "instruction": "pick a colour", "status": "completed",
		"created_at": t0.UTC().Format(time.RFC3339Nano), "updated_at": at.UTC().Format(time.RFC3339Nano),
		"completed_at": t0.UTC().Format(time.RFC3339Nano), "callback_url": target,
		"response": map[string]any{"category": "red"}, "metadata": map[string]any{}, "params": map[string]any{"categories": []string{"red", "blue"}},
	}
	if succeeded != nil {
		task["callback_succeeded"] = succeeded
	}
	f.tasks[id] = task
}

// dropSubscribers closes every stream connection, as a server restart
// would, without closing the hub.
func (f *fakeAPI) dropSubscribers() {
	f.hub.mu.Lock()
	defer f.hub.mu.Unlock()
	for c := range f.hub.clients {
		f.hub.dropLocked(c, 1012, "service restart")
		_ = c.conn.UnderlyingConn().Close()
	}
}
