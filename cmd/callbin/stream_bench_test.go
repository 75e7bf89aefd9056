package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The live stream measured on the full capture path: real HTTP captures
// into a real callbin (group commit, then the hub), and real websocket
// subscribers, all on loopback in this process.
//
//	go test -run '^$' -bench BenchmarkLiveStream -benchtime 1x ./cmd/callbin

// benchStreamURL is the stream of m, for one bin.
func benchStreamURL(m *Main, bin string) string {
	return "ws" + strings.TrimPrefix(m.HTTPURL(), "http") + "/api/v1/stream?bin=" + bin
}

// benchClient posts captures over keep-alive connections.
func benchClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second},
	}
}

func benchPost(c *http.Client, url string, body []byte) error {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("capture: got status %d, want 200", resp.StatusCode)
	}
	return nil
}

// pathSeq reads N from the event's "path":"/b/BIN/N" without decoding the
// rest, so that 50 readers in this process cost little next to the server.
func pathSeq(data []byte, prefix []byte) (int, bool) {
	i := bytes.Index(data, prefix)
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:end]))
	return n, err == nil
}

func benchPercentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[int(float64(len(d)-1)*p)]
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkLiveStream reports, on the full capture path:
//
//   - latency: 2,000 captures POSTed at 1,000/s (open loop, 32 senders)
//     to a bin with 50 websocket subscribers; the time from each POST
//     being sent to each subscriber reading its event: p50, p99 (want at
//     most 50 ms), max; the captures' own reply time p99 in the same run as
//     the baseline, and the ratio of the two p99s;
//   - stalled: capture throughput (8 senders, as fast as they go, rounds
//     of 400 ms) with one healthy subscriber ("none") and with the same
//     plus one subscriber that never reads ("stalled"), in 8 pairs of
//     rounds next to each other in time; the figure is the median of the
//     pairs' ratios (want at least 0.95), which a busy machine's drift
//     moves less than a ratio of medians. The stalled subscriber's
//     connection fills within a few hundred events; when the hub drops it
//     another takes its place, so one is always there, stalled or
//     stalling.
func BenchmarkLiveStream(b *testing.B) {
	b.Run("latency", func(b *testing.B) {
		var p50, p99, maxLat, reply99, rate, dropped, missing float64
		for b.Loop() {
			r := benchLatency(b, 50, 2000, 1000)
			p50, p99, maxLat, reply99 = benchMS(r.p50), benchMS(r.p99), benchMS(r.max), benchMS(r.reply99)
			rate, dropped, missing = r.rate, float64(r.dropped), float64(r.missing)
		}
		b.ReportMetric(p50, "p50-ms")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(maxLat, "max-ms")
		b.ReportMetric(reply99, "reply-p99-ms")
		b.ReportMetric(p99/reply99, "p99/reply-p99")
		b.ReportMetric(rate, "captures/s")
		b.ReportMetric(dropped, "dropped")
		b.ReportMetric(missing, "missing")
	})
	b.Run("stalled", func(b *testing.B) {
		var none, stalled []float64
		var drops int64
		for b.Loop() { // -benchtime Nx: N times the pairs, a tighter median
			n, s, d := benchStalled(b, 8, 400*time.Millisecond)
			none, stalled, drops = append(none, n...), append(stalled, s...), drops+d
		}
		ratios := make([]float64, len(none))
		for i := range none {
			ratios[i] = stalled[i] / none[i]
		}
		b.Logf("stalled/none of each pair: %.3f", ratios)
		b.ReportMetric(benchMedian(none), "captures/s-none")
		b.ReportMetric(benchMedian(stalled), "captures/s-stalled")
		b.ReportMetric(benchMedian(ratios), "stalled/none")
		b.ReportMetric(float64(drops), "stalled-drops")
	})
}

func benchMedian(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

type latencyResult struct {
	p50, p99, max, reply99 time.Duration
	rate                   float64
	dropped                int64
	missing                int
}

// benchLatency runs subs subscribers on a fresh callbin, posts n captures
// at rate per second and measures every capture-to-event latency.
func benchLatency(b *testing.B, subs, n, rate int) latencyResult {
	m := MustRun(b)
	const bin = "lat"
	prefix := []byte(`"path":"/b/` + bin + `/`)
	sent := make([]atomic.Int64, n) // unix ns at which POST i was sent

	var mu sync.Mutex
	all := make([]time.Duration, 0, subs*n)
	var readers sync.WaitGroup
	var got atomic.Int64
	for range subs {
		conn, _, err := websocket.DefaultDialer.Dial(benchStreamURL(m, bin), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		readers.Add(1)
		go func() {
			defer readers.Done()
			mine := make([]time.Duration, 0, n)
			defer func() {
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			}()
			for len(mine) < n {
				conn.SetReadDeadline(time.Now().Add(15 * time.Second))
				_, data, err := conn.ReadMessage()
				now := time.Now().UnixNano()
				if err != nil {
					return
				}
				seq, ok := pathSeq(data, prefix)
				if !ok || seq < 0 || seq >= n {
					continue // a bin event
				}
				mine = append(mine, time.Duration(now-sent[seq].Load()))
				got.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.Hub.Clients() < subs {
		if time.Now().After(deadline) {
			b.Fatalf("subscribers: got %d, want %d", m.Hub.Clients(), subs)
		}
		time.Sleep(time.Millisecond)
	}

	client := benchClient()
	base := m.HTTPURL() + "/b/" + bin + "/"
	replies := make([]time.Duration, n)
	next := make(chan int)
	var senders sync.WaitGroup
	var failed atomic.Value
	for range 32 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			body := []byte(`{"event":"order.paid","order":{"id":"ord_1042","total":"42.00"}}`)
			for i := range next {
				t0 := time.Now()
				sent[i].Store(t0.UnixNano())
				if err := benchPost(client, base+strconv.Itoa(i), body); err != nil {
					failed.Store(err)
					continue
				}
				replies[i] = time.Since(t0)
			}
		}()
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		next <- i
	}
	close(next)
	senders.Wait()
	elapsed := time.Since(start)
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}

	// Every subscriber has read every event, or gave up after its deadline.
	done := make(chan struct{})
	go func() {
		readers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		b.Fatalf("readers: %d of %d events after 20 s", got.Load(), subs*n)
	}
	mu.Lock()
	defer mu.Unlock()
	return latencyResult{
		p50:     benchPercentile(all, 0.50),
		p99:     benchPercentile(all, 0.99),
		max:     benchPercentile(all, 1),
		reply99: benchPercentile(replies, 0.99),
		rate:    float64(n) / elapsed.Seconds(),
		dropped: m.Hub.Dropped(),
		missing: subs*n - len(all),
	}
}

// stalledDialer connects with a 4 KiB receive buffer and a small segment
// size (which keeps the server's send buffer small too, since the kernel
// sizes it by segments), so that a client that never reads fills its
// connection within a few hundred events.
var stalledDialer = websocket.Dialer{
	HandshakeTimeout: 5 * time.Second,
	NetDialContext: (&net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				if serr == nil {
					serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}).DialContext,
}

// benchStalled measures capture throughput on one callbin in rounds of
// length d: pairs of "none" (one healthy subscriber) and "stalled" (the
// same plus one subscriber that never reads), rounds pairs. It returns
// captures per second of each round, none[i] paired with stalled[i], and
// how often the hub dropped a stalled subscriber.
func benchStalled(b *testing.B, rounds int, d time.Duration) (none, stalled []float64, drops int64) {
	m := MustRun(b)
	const bin = "thr"
	healthy, _, err := websocket.DefaultDialer.Dial(benchStreamURL(m, bin), nil)
	if err != nil {
		b.Fatal(err)
	}
	var read atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			healthy.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, data, err := healthy.ReadMessage()
			if err != nil {
				return
			}
			if bytes.Contains(data, []byte(`"type":"capture"`)) {
				read.Add(1)
			}
		}
	}()
	b.Cleanup(func() {
		healthy.Close()
		<-readerDone
	})
	for m.Hub.Clients() < 1 {
		time.Sleep(time.Millisecond)
	}

	client := benchClient()
	url := m.HTTPURL() + "/b/" + bin + "/x"
	body := []byte(`{"event":"order.paid","order":{"id":"ord_1042","total":"42.00"}}`)
	var posted int64
	round := func() float64 {
		var count atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		stop := time.Now().Add(d)
		start := time.Now()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100_000 && time.Now().Before(stop); i++ {
					if err := benchPost(client, url, body); err != nil {
						failed.Store(err)
						return
					}
					count.Add(1)
				}
			}()
		}
		wg.Wait()
		if err, ok := failed.Load().(error); ok {
			b.Fatal(err)
		}
		posted += count.Load()
		return float64(count.Load()) / time.Since(start).Seconds()
	}

	// withStalled keeps one stalled subscriber connected while f runs: a
	// new one replaces each that the hub drops.
	withStalled := func(f func() float64) float64 {
		ctx, cancel := context.WithCancel(context.Background())
		var conns []*websocket.Conn
		dial := func() {
			conn, _, err := stalledDialer.Dial(benchStreamURL(m, bin), nil)
			if err != nil {
				b.Error(err)
				return
			}
			conns = append(conns, conn) // never read
		}
		dial()
		for m.Hub.Clients() < 2 {
			time.Sleep(time.Millisecond)
		}
		var watcher sync.WaitGroup
		watcher.Add(1)
		go func() {
			defer watcher.Done()
			seen := m.Hub.Dropped()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if n := m.Hub.Dropped(); n != seen {
					seen = n
					dial()
				}
			}
		}()
		v := f()
		cancel()
		watcher.Wait()
		for _, c := range conns {
			c.Close()
		}
		return v
	}

	before := m.Hub.Dropped()
	round() // warm up: connections, page cache
	// Pairs of rounds, next to each other in time, in alternating order.
	for i := range rounds {
		if i%2 == 0 {
			none = append(none, round())
			stalled = append(stalled, withStalled(round))
		} else {
			stalled = append(stalled, withStalled(round))
			none = append(none, round())
		}
	}
	drops = m.Hub.Dropped() - before

	// The healthy subscriber kept up through it all.
	deadline := time.Now().Add(10 * time.Second)
	for read.Load() < posted && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if read.Load() != posted {
		b.Errorf("healthy subscriber: got %d events, want %d", read.Load(), posted)
	}
	return none, stalled, drops
}
