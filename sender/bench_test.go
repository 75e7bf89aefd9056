package sender

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
)

// benchPublisher signals the end of each task's first attempt.
type benchPublisher struct{ waiters sync.Map } // task id -> chan Event

func (p *benchPublisher) Publish(ev Event) {
	if ev.Type != EventTypeAttempt {
		return
	}
	if ch, ok := p.waiters.Load(ev.TaskID); ok {
		select {
		case ch.(chan Event) <- ev:
		default:
		}
	}
}

// BenchmarkDelivery drives the whole path (create a task through the API,
// complete it, callback POST to a local receiver answering 200, attempt
// recorded) and, in the same run, a bare loop of the same POSTs at the same
// concurrency. It reports deliveries/s, bare_posts/s and their ratio.
func BenchmarkDelivery(b *testing.B) {
	for _, c := range []int{8, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) { benchDelivery(b, c) })
	}
}

func benchDelivery(b *testing.B, concurrency int) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer receiver.Close()

	pub := &benchPublisher{}
	e := &Engine{Path: filepath.Join(b.TempDir(), "sender.db"), Events: pub, Workers: max(32, concurrency),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := e.Open(); err != nil {
		b.Fatal(err)
	}
	defer e.Close(b.Context())
	r := mux.NewRouter()
	e.Register(r)
	api := httptest.NewServer(r)
	defer api.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency * 2}, Timeout: 10 * time.Second}
	post := func(url string, body []byte, auth bool) ([]byte, error) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.SetBasicAuth("bench", "")
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, out)
		}
		return out, err
	}
	run := func(n int, op func() error) (time.Duration, error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, concurrency)
		start := time.Now()
		for range concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					if err := op(); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		select {
		case err := <-errs:
			return elapsed, err
		default:
			return elapsed, nil
		}
	}

	createBody, _ := json.Marshal(categorization(receiver.URL))
	completeBody := []byte(`{"response":{"category":"red"}}`)
	full := func() error {
		out, err := post(api.URL+"/v1/task/categorization", createBody, true)
		if err != nil {
			return err
		}
		var t struct {
			TaskID string `json:"task_id"`
		}
		if err := json.Unmarshal(out, &t); err != nil {
			return err
		}
		ch := make(chan Event, 1)
		pub.waiters.Store(t.TaskID, ch)
		defer pub.waiters.Delete(t.TaskID)
		if _, err := post(api.URL+"/v1/task/"+t.TaskID+"/complete", completeBody, true); err != nil {
			return err
		}
		select {
		case ev := <-ch:
			if ev.State != "succeeded" {
				return fmt.Errorf("task %s: attempt %s (%s)", t.TaskID, ev.State, ev.Error)
			}
		case <-time.After(10 * time.Second):
			return fmt.Errorf("task %s: no attempt recorded in 10s", t.TaskID)
		}
		return nil
	}
	// The bare loop posts a callback body of the same size.
	sample, _ := sampleTask(EventCompleted, "", receiver.URL, time.Now())
	payload, _ := payloadFor(sample)
	bare := func() error {
		_, err := post(receiver.URL, payload, false)
		return err
	}

	b.ResetTimer()
	fullTime, err := run(b.N, full)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	bareTime, err := run(b.N, bare)
	if err != nil {
		b.Fatal(err)
	}
	deliveries := float64(b.N) / fullTime.Seconds()
	posts := float64(b.N) / bareTime.Seconds()
	b.ReportMetric(deliveries, "deliveries/s")
	b.ReportMetric(posts, "bare_posts/s")
	b.ReportMetric(deliveries/posts, "ratio")
}
