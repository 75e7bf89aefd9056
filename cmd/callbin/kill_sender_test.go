package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// killReceiver answers callbacks: a webhook-id's first failFor requests
// get 500, the ones after 200, except on /never, which always gets 500.
// Each reply waits a little, so that a kill finds attempts in flight.
type killReceiver struct {
	mu   sync.Mutex
	seen map[string]int // webhook-id -> requests
	oks  map[string]int // webhook-id -> 200s given
	task map[string]string
	n    int
}

const failFor = 8

func (k *killReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p struct {
		TaskID string `json:"task_id"`
	}
	json.Unmarshal(body, &p)
	id := r.Header.Get("webhook-id")
	k.mu.Lock()
	k.n++
	k.seen[id]++
	if prev, ok := k.task[id]; ok && prev != p.TaskID {
		k.task[id] = "two tasks: " + prev + ", " + p.TaskID
	} else {
		k.task[id] = p.TaskID
	}
	ok := r.URL.Path != "/never" && k.seen[id] > failFor
	if ok {
		k.oks[id]++
	}
	k.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	if ok {
		w.Write([]byte(`{"ok":true}`))
		return
	}
	w.WriteHeader(http.StatusInternalServerError)
}

func (k *killReceiver) requests() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n
}

// TestKill9DuringRetries kills the built binary with SIGKILL while
// callbacks are being retried, restarts it on the same data, and checks
// that every delivery resumed and ended as its receiver decided, with
// every attempt recorded once and never more than the policy's 21: 30
// tasks whose receiver recovers at its 9th request, 10 whose receiver never
// does.
func TestKill9DuringRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	rc := &killReceiver{seen: map[string]int{}, oks: map[string]int{}, task: map[string]string{}}
	recv := httptest.NewServer(rc)
	defer recv.Close()

	// 20 retries 10 s apart, at 100x: an attempt every 0.1 s, the whole
	// ladder in about 2 s.
	data := t.TempDir()
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	delays := strings.TrimSuffix(strings.Repeat("10s, ", 20), ", ")
	if err := os.WriteFile(policy, []byte("name: ten-seconds\ndelays: ["+delays+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", data,
		"-time-scale", "100", "-retry-policy", policy}
	p := MustStart(t, args...)

	type task struct{ id, url string }
	var tasks []task
	for i := range 40 {
		url := recv.URL + "/hook"
		if i%4 == 3 {
			url = recv.URL + "/never"
		}
		created := taskCall(t, p.URL, "/v1/task/categorization", map[string]any{"callback_url": url,
			"attachment_type": "text", "attachment": fmt.Sprint("item ", i), "categories": []string{"a", "b"}})
		id := created["task_id"].(string)
		taskCall(t, p.URL, "/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"category": "a"}})
		tasks = append(tasks, task{id, url})
	}

	// Kill once most deliveries are a few attempts in, long before the
	// 9th attempt of any.
	deadline := time.Now().Add(20 * time.Second)
	for rc.requests() < 40*3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Cmd.Wait()
	atKill := rc.requests()
	if atKill < 40*3 || atKill >= 40*failFor {
		t.Fatalf("%d callback requests when killed, want from %d to %d", atKill, 40*3, 40*failFor)
	}

	p2 := MustStart(t, args...)
	deadline = time.Now().Add(60 * time.Second)
	var interrupted int
	for _, tk := range tasks {
		for {
			got := taskGet(t, p2.URL, "/v1/task/"+tk.id)
			if got["callback_succeeded"] != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s: callback not decided a minute after the restart", tk.id)
			}
			time.Sleep(50 * time.Millisecond)
		}
		interrupted += checkDelivery(t, p2.URL, tk.id, strings.HasSuffix(tk.url, "/never"), rc)
	}
	if rc.requests() <= atKill {
		t.Fatalf("no callback request after the restart (%d before the kill)", atKill)
	}
	t.Logf("killed after %d callback requests; %d attempts were in flight and recorded as interrupted; %d requests in all",
		atKill, interrupted, rc.requests())
}

// checkDelivery checks task id's one delivery after the restart and
// returns how many of its attempts were interrupted by the kill.
func checkDelivery(t *testing.T, base, id string, never bool, rc *killReceiver) int {
	t.Helper()
	log := taskGet(t, base, "/v1/task/"+id+"/callbacks")
	items := log["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("task %s: %d deliveries, want 1", id, len(items))
	}
	d := items[0].(map[string]any)
	webhookID := d["webhook_id"].(string)
	attempts := d["attempts"].([]any)
	n := len(attempts)
	interrupted := 0
	for i, a := range attempts {
		a := a.(map[string]any)
		if int(a["n"].(float64)) != i+1 {
			t.Errorf("task %s: attempt %d numbered %v", id, i+1, a["n"])
		}
		if a["error_class"] == "interrupted" {
			interrupted++
		}
	}
	last := attempts[n-1].(map[string]any)
	rc.mu.Lock()
	seen, oks, owner := rc.seen[webhookID], rc.oks[webhookID], rc.task[webhookID]
	rc.mu.Unlock()
	if owner != id {
		t.Errorf("task %s: webhook-id %s was sent for %q", id, webhookID, owner)
	}
	switch {
	case n > 21:
		t.Errorf("task %s: %d attempts recorded, the policy allows 21", id, n)
	case never && (d["state"] != "failed" || n != 21):
		t.Errorf("task %s (receiver never recovers): state %v after %d attempts, want failed after 21", id, d["state"], n)
	case !never && (d["state"] != "succeeded" || last["status"] != float64(200) || oks < 1):
		t.Errorf("task %s: state %v, last attempt %v, %d 200s given; want succeeded on a 200", id, d["state"], last, oks)
	}
	// Every attempt that was not interrupted reached the receiver, and no
	// request was sent that is not counted as an attempt.
	if seen > n || seen < n-interrupted {
		t.Errorf("task %s: the receiver saw %d requests for %d attempts (%d interrupted)", id, seen, n, interrupted)
	}
	if interrupted > 1 {
		t.Errorf("task %s: %d interrupted attempts after one kill", id, interrupted)
	}
	return interrupted
}

// taskCall POSTs body to the task API and returns the 200 reply.
func taskCall(t *testing.T, base, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("test", "")
	return taskDo(t, req)
}

// taskGet GETs path from the task API and returns the 200 reply.
func taskGet(t *testing.T, base, path string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.SetBasicAuth("test", "")
	return taskDo(t, req)
}

func taskDo(t *testing.T, req *http.Request) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: status %d, %v (%v)", req.Method, req.URL.Path, resp.StatusCode, out, err)
	}
	return out
}
