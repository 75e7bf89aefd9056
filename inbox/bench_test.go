package inbox_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/inbox/inboxtest"
)

// load sends n POSTs of body to url from conns concurrent keep-alive
// connections and returns the rate and the latencies seen. It stops early
// at the deadline.
func load(tb testing.TB, url string, body []byte, n, conns int, deadline time.Duration) (float64, []time.Duration) {
	tb.Helper()
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		lats    = make([]time.Duration, 0, n)
		wg      sync.WaitGroup
		failed  atomic.Int64
		stopAt  = time.Now().Add(deadline)
		started = time.Now()
	)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/conns+1)
			for next.Add(1) <= int64(n) && time.Now().Before(stopAt) {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	if f := failed.Load(); f > 0 {
		tb.Fatalf("%d requests failed", f)
	}
	return float64(len(lats)) / elapsed.Seconds(), lats
}

func percentile(lats []time.Duration, p float64) time.Duration {
	if len(lats) == 0 {
		return 0
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// serveBare starts a bare net/http server whose handler reads the body and
// answers like a capture does, without storing anything: the baseline.
func serveBare(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`+"\n")
	})}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// BenchmarkCaptureThroughput compares durable captures of 1 KiB JSON bodies
// from 50 connections with a bare net/http handler reading the same bodies,
// in the same run, and reports both rates, their ratio and the captures'
// p99 latency. b.N is the number of requests of each side, e.g.
//
//	go test ./inbox -run XXX -bench CaptureThroughput -benchtime 40000x
func BenchmarkCaptureThroughput(b *testing.B) {
	body := []byte(fmt.Sprintf(`{"event":"task.completed","data":"%s"}`, bytes.Repeat([]byte("x"), 1024-35)))
	bare := serveBare(b)
	srv := MustServe(b, nil)
	const conns = 50
	n := max(b.N, 2000)
	b.ResetTimer()
	// Alternate the two sides so that a noisy neighbour hits both alike.
	var bareRate, capRate float64
	var capLats []time.Duration
	for round := 0; round < 2; round++ {
		r, _ := load(b, bare+"/", body, n/2, conns, time.Minute)
		bareRate += r / 2
		r, lats := load(b, srv.URL+"/b/bench", body, n/2, conns, time.Minute)
		capRate += r / 2
		capLats = append(capLats, lats...)
	}
	b.StopTimer()
	b.ReportMetric(bareRate, "bare_req/s")
	b.ReportMetric(capRate, "capture_req/s")
	b.ReportMetric(capRate/bareRate, "ratio")
	b.ReportMetric(float64(percentile(capLats, 0.99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(percentile(capLats, 0.50).Microseconds())/1000, "p50_ms")
	bin, err := srv.Store.FindBin(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	if bin.CaptureCount != int64(len(capLats)) {
		b.Fatalf("stored %d captures, acknowledged %d", bin.CaptureCount, len(capLats))
	}
}

// BenchmarkListNewest measures listing a bin's newest 50 captures with
// CALLBIN_BENCH_CAPTURES captures stored (default 1,000,000 spread over
// 10 bins), the query behind GET /api/v1/bins/{bin}/captures.
//
//	go test ./inbox -run XXX -bench ListNewest -benchtime 2000x
func BenchmarkListNewest(b *testing.B) {
	total := 1_000_000
	if v := getenvInt("CALLBIN_BENCH_CAPTURES"); v > 0 {
		total = v
	}
	s := &inbox.Store{Path: filepath.Join(b.TempDir(), "inbox.db"), MaxBatch: 4096}
	if err := s.Open(); err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	inboxtest.Seed(b, s, total, 10)
	ctx := context.Background()
	b.ResetTimer()
	lats := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		caps, err := s.FindCaptures(ctx, inbox.CaptureFilter{Bin: fmt.Sprintf("bin%d", i%10), Limit: 51})
		lats = append(lats, time.Since(t0))
		if err != nil || len(caps) != 51 {
			b.Fatalf("got %d captures, %v", len(caps), err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lats, 0.5).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(percentile(lats, 0.99).Microseconds())/1000, "p99_ms")
}

func getenvInt(name string) int {
	var n int
	fmt.Sscan(os.Getenv(name), &n)
	return n
}
