package sender

import (
	"bytes"
	"context"
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

// benchPublisher hands each task's callback decision (the task event that
// sets callback_succeeded, published after its commit) to whoever waits
// for that task.
type benchPublisher struct{ waiters sync.Map } // task id -> chan bool

func (p *benchPublisher) Publish(ev Event) {
	if ev.Type != EventTypeTask || ev.CallbackSucceeded == nil {
		return
	}
	if ch, ok := p.waiters.Load(ev.TaskID); ok {
		select {
		case ch.(chan bool) <- *ev.CallbackSucceeded:
		default:
		}
	}
}

// BenchmarkDelivery measures callback deliveries per second against a
// local receiver that answers 200, next to a bare loop of the same POSTs
// (same body size, same concurrency, same receiver) in the same run, and
// reports deliveries/s, bare_posts/s and ratio = deliveries/s ÷ bare_posts/s
// (and, where the platform tells, the process CPU time per delivery and per
// bare POST, and the write transactions committed per delivery). The two
// loops alternate in rounds of b.N/10, so that a shared machine's load falls
// on both alike.
//
// One delivery is: create a categorization task, complete it (which builds
// the callback payload and queues the delivery durably in SQLite), the
// scheduler and a worker send the callback POST, the receiver answers 200,
// the attempt is recorded and the task's callback_succeeded is set — and
// the delivery counts only once that decision is committed (the engine
// publishes it after commit; the benchmark waits for it). At the end the
// benchmark checks in the database that every task has callback_succeeded
// true and exactly one attempt with status 200. Each of the c workers runs
// deliveries one after the other, as each bare-loop worker runs POSTs.
//
//   - engine/concurrency=N: create and complete through the Engine's own
//     methods (CreateTask, CompleteTask). This is the sender's path and the
//     headline ratio. The engine has max(32, N) workers (128, the default,
//     at N=128).
//   - api/concurrency=N: create and complete through the HTTP task API
//     (POST /v1/task/categorization, POST /v1/task/{id}/complete), i.e. three
//     HTTP exchanges per delivery against the bare loop's one.
func BenchmarkDelivery(b *testing.B) {
	for _, c := range []int{8, 32, 128} {
		b.Run(fmt.Sprintf("engine/concurrency=%d", c), func(b *testing.B) { benchDelivery(b, c, false) })
	}
	b.Run("api/concurrency=32", func(b *testing.B) { benchDelivery(b, 32, true) })
}

// rounds is how many times the benchmark alternates between the engine
// loop and the bare loop.
const rounds = 10

func benchDelivery(b *testing.B, concurrency int, viaAPI bool) {
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
	defer e.Close(context.Background())
	r := mux.NewRouter()
	e.Register(r)
	api := httptest.NewServer(r)
	defer api.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency * 2}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
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
	create := func() (string, error) {
		if !viaAPI {
			t, err := e.CreateTask(context.Background(), TypeCategorization, createBody)
			if err != nil {
				return "", err
			}
			return t.TaskID, nil
		}
		out, err := post(api.URL+"/v1/task/categorization", createBody, true)
		if err != nil {
			return "", err
		}
		var t struct {
			TaskID string `json:"task_id"`
		}
		if err := json.Unmarshal(out, &t); err != nil {
			return "", err
		}
		return t.TaskID, nil
	}
	complete := func(id string) error {
		if !viaAPI {
			_, err := e.CompleteTask(context.Background(), id, json.RawMessage(`{"category":"red"}`))
			return err
		}
		_, err := post(api.URL+"/v1/task/"+id+"/complete", completeBody, true)
		return err
	}
	// Every wait for a callback decision ends by this deadline.
	deadline, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	full := func() error {
		id, err := create()
		if err != nil {
			return err
		}
		ch := make(chan bool, 1)
		pub.waiters.Store(id, ch)
		defer pub.waiters.Delete(id)
		if err := complete(id); err != nil {
			return err
		}
		select {
		case ok := <-ch:
			if !ok {
				return fmt.Errorf("task %s: callback failed", id)
			}
		case <-deadline.Done():
			return fmt.Errorf("task %s: callback_succeeded not set before the benchmark's deadline", id)
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

	// The two loops alternate in rounds, so that both see the same load
	// when the machine is shared.
	b.ResetTimer()
	var fullTime, bareTime, fullCPU, bareCPU time.Duration
	var commits int64
	for done := 0; done < b.N; {
		n := min(b.N-done, max(b.N/rounds, 1))
		b.StartTimer()
		cpu0, commits0 := processCPU(), e.commits.Load()
		d, err := run(n, full)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu1 := processCPU()
		fullTime += d
		fullCPU += cpu1 - cpu0
		commits += e.commits.Load() - commits0
		d, err = run(n, bare)
		if err != nil {
			b.Fatal(err)
		}
		bareTime += d
		bareCPU += processCPU() - cpu1
		done += n
	}
	// Every delivery is durably recorded: read it back from the file.
	var succeeded, attempts200, attempts int
	if err := e.rdb.QueryRow(`SELECT (SELECT COUNT(*) FROM task_view WHERE callback_succeeded = 1),
		(SELECT COUNT(*) FROM attempts WHERE status = 200), (SELECT COUNT(*) FROM attempts)`).Scan(
		&succeeded, &attempts200, &attempts); err != nil {
		b.Fatal(err)
	}
	if succeeded != b.N || attempts200 != b.N || attempts != b.N {
		b.Fatalf("database: got %d tasks with callback_succeeded, %d attempts with 200 of %d, want %d each",
			succeeded, attempts200, attempts, b.N)
	}
	deliveries := float64(b.N) / fullTime.Seconds()
	posts := float64(b.N) / bareTime.Seconds()
	b.ReportMetric(deliveries, "deliveries/s")
	b.ReportMetric(posts, "bare_posts/s")
	b.ReportMetric(deliveries/posts, "ratio")
	b.ReportMetric(float64(commits)/float64(b.N), "commits/delivery")
	if fullCPU > 0 {
		// CPU time of the whole process (engine, receiver and load
		// generator) per delivery and per bare POST: steadier than rates on
		// a shared machine.
		b.ReportMetric(float64(fullCPU.Microseconds())/float64(b.N), "cpu_us/delivery")
		b.ReportMetric(float64(bareCPU.Microseconds())/float64(b.N), "cpu_us/bare_post")
	}
}
