package smtpsink_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// benchMessage is a 2 KiB e-mail callback: a few headers and a JSON body.
func benchMessage() string {
	head := "From: callbin <sender@callbin.local>\r\nTo: bench@callbin.local\r\nSubject: task 42 completed\r\n" +
		"Date: Tue, 3 Jun 2025 10:00:00 +0000\r\nMessage-ID: <bench@callbin.local>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: application/json; charset=utf-8\r\n\r\n"
	body := `{"task_id":"42","status":"completed","response":{"category":"red"},"pad":"`
	pad := 2048 - len(head) - len(body) - len("\"}\r\n")
	return head + body + strings.Repeat("x", pad) + "\"}\r\n"
}

// memorySink is the baseline: a go-smtp server whose backend reads each
// message into memory and forgets it.
func memorySink(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return memSession{}, nil }))
	srv.Domain = "memory.local"
	srv.MaxMessageBytes = 25 << 20
	srv.AllowInsecureAuth = true
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	tb.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

type memSession struct{}

func (memSession) Reset()                               {}
func (memSession) Logout() error                        { return nil }
func (memSession) Mail(string, *smtp.MailOptions) error { return nil }
func (memSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (memSession) Data(r io.Reader) error {
	_, err := io.ReadAll(r)
	return err
}

// maxLoad bounds the messages of one smtpLoad, whatever its duration.
const maxLoad = 2_000_000

// smtpLoad sends msg to addr from conns concurrent connections, each
// reusing its connection (a new MAIL per message), for d (and at most
// maxLoad messages), and returns the rate of messages answered 250 and
// their count.
func smtpLoad(tb testing.TB, addr string, conns int, d time.Duration, msg string) (float64, int64) {
	tb.Helper()
	var (
		ok     atomic.Int64
		failed atomic.Int64
		first  atomic.Value
		wg     sync.WaitGroup
		stopAt = time.Now().Add(d)
		start  = time.Now()
	)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err.Error())
				return
			}
			defer c.Close()
			c.CommandTimeout, c.SubmissionTimeout = 30*time.Second, 30*time.Second
			for time.Now().Before(stopAt) && ok.Load() < maxLoad {
				if _, err := send(c, "sender@callbin.local", []string{"bench@callbin.local"}, msg); err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err.Error())
					return
				}
				ok.Add(1)
			}
			c.Quit()
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		tb.Fatalf("%d connections failed, the first with %v", n, first.Load())
	}
	return float64(ok.Load()) / time.Since(start).Seconds(), ok.Load()
}

// BenchmarkIngest compares durable e-mail ingest (parse, store with group
// commit, then 250) with a memory-only go-smtp sink, in the same run: 20
// connections send 2 KiB messages over reused connections. The two sides
// alternate in rounds so that a noisy neighbour hits both alike; each side
// runs CALLBIN_BENCH_SECONDS in all (default 4; the measure is 10):
//
//	CALLBIN_BENCH_SECONDS=10 go test ./smtpsink -run XXX -bench Ingest
func BenchmarkIngest(b *testing.B) {
	seconds := 4.0
	if v, err := strconv.ParseFloat(os.Getenv("CALLBIN_BENCH_SECONDS"), 64); err == nil && v > 0 {
		seconds = v
	}
	const conns, rounds = 20, 2
	per := time.Duration(seconds * float64(time.Second) / rounds)
	msg := benchMessage()
	mem := memorySink(b)
	srv := MustServe(b, nil)
	b.ResetTimer()
	var memRate, sinkRate float64
	var stored int64
	for r := 0; r < rounds; r++ {
		rate, _ := smtpLoad(b, mem, conns, per, msg)
		memRate += rate / rounds
		rate, n := smtpLoad(b, srv.ListenAddr(), conns, per, msg)
		sinkRate += rate / rounds
		stored += n
	}
	b.StopTimer()
	b.ReportMetric(memRate, "memory_msg/s")
	b.ReportMetric(sinkRate, "durable_msg/s")
	b.ReportMetric(sinkRate/memRate, "ratio")
	bin, err := srv.Store.FindBin(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	if bin.CaptureCount != stored {
		b.Fatalf("stored %d captures, answered 250 to %d", bin.CaptureCount, stored)
	}
	if len(msg) != 2048 {
		b.Fatal(fmt.Sprintf("message is %d bytes, want 2048", len(msg)))
	}
}
