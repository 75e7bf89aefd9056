// Package inboxtest has test helpers for code that stores captures through
// inbox: a store in a fresh folder, and many captures at once.
package inboxtest

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbin/callbin/inbox"
)

// MustOpenStore opens a store in a fresh folder, closed at the end of the
// test.
func MustOpenStore(tb testing.TB) *inbox.Store {
	tb.Helper()
	s := &inbox.Store{Path: filepath.Join(tb.TempDir(), "inbox.db")}
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// Seed stores total HTTP captures with 1 KiB bodies, spread over the bins
// bin0 to bin{bins-1}, from many goroutines so that they share commits.
func Seed(tb testing.TB, s *inbox.Store, total, bins int) {
	tb.Helper()
	body := bytes.Repeat([]byte("y"), 1024)
	var wg sync.WaitGroup
	var next atomic.Int64
	for g := 0; g < 512; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				c := &inbox.Capture{Bin: fmt.Sprintf("bin%d", i%int64(bins)), Kind: inbox.KindHTTP, Method: "POST",
					Path: "/b/x", Proto: "HTTP/1.1", Headers: []inbox.Header{{"Host", "127.0.0.1"}, {"Content-Type", "application/json"}},
					Body: body, Size: int64(len(body)), ReceivedAt: time.Now(), Reply: inbox.Reply{Status: 200}}
				if err := s.Add(context.Background(), c); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
