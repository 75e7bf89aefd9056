package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// buildBinary builds the callbin binary once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "callbin-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "callbin")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// Process is the built callbin running as a child process.
type Process struct {
	Cmd  *exec.Cmd
	URL  string // its HTTP server
	SMTP string // its SMTP sink's address, "" when it has none
}

var startedLine = regexp.MustCompile(`http=(http://127\.0\.0\.1:\d+)(?: smtp=(127\.0\.0\.1:\d+))?`)

// MustStart runs the built binary with args and waits until it serves.
func MustStart(tb testing.TB, args ...string) *Process {
	tb.Helper()
	bin, err := buildBinary()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := startedLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case m := <-found:
		return &Process{Cmd: cmd, URL: m[1], SMTP: m[2]}
	case <-time.After(30 * time.Second):
		tb.Fatal("callbin did not start")
		return nil
	}
}

// Kill -9 under load loses nothing that was answered: every capture that got
// a 2xx is there after a restart, byte for byte.
func TestKill9LosesNothingAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	data := t.TempDir()
	p := MustStart(t, "-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", data)

	var (
		mu    sync.Mutex
		acked = map[int64][]byte{}
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	client := &http.Client{Timeout: 5 * time.Second}
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000; i++ { // bounded; stop ends it long before
				select {
				case <-stop:
					return
				default:
				}
				body := make([]byte, 64+i%2000)
				rand.Read(body)
				resp, err := client.Post(p.URL+"/b/kill", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					continue // the process is gone: not answered, nothing promised
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					continue
				}
				id, err := strconv.ParseInt(resp.Header.Get("Callbin-Capture-Id"), 10, 64)
				if err != nil {
					t.Errorf("2xx without a capture id: %v", err)
					continue
				}
				mu.Lock()
				acked[id] = body
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Cmd.Wait()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(acked) < 100 {
		t.Fatalf("only %d captures were answered before the kill", len(acked))
	}

	p2 := MustStart(t, "-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", data)
	mustBeStored(t, p2.URL, "kill", acked)
}

// mustBeStored checks that every capture acknowledged before a kill is in
// the bin, byte for byte.
func mustBeStored(t *testing.T, base, bin string, acked map[int64][]byte) {
	t.Helper()
	missing := 0
	for id, want := range acked {
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/bins/%s/captures/%d/raw", base, bin, id))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, want) {
			missing++
			if missing <= 5 {
				t.Errorf("capture %d: got %d with %d bytes, want the %d bytes acknowledged", id, resp.StatusCode, len(got), len(want))
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged captures lost", missing, len(acked))
	}
	t.Logf("%d captures acknowledged before kill -9, all stored byte for byte", len(acked))
}

// storedAs finds the capture id in the sink's 250 text.
var storedAs = regexp.MustCompile(`capture (\d+)`)

// Kill -9 under SMTP load: every message that got its 250 is stored, byte
// for byte.
func TestKill9SMTPLosesNothingAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	data := t.TempDir()
	p := MustStart(t, "-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", data)
	smtpAddr := p.SMTP
	if smtpAddr == "" {
		t.Fatal("callbin did not say where its SMTP sink listens")
	}

	var (
		mu    sync.Mutex
		acked = map[int64][]byte{}
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c, err := smtp.Dial(smtpAddr)
			if err != nil {
				return
			}
			defer c.Close()
			for i := 0; i < 100_000; i++ { // bounded; stop ends it long before
				select {
				case <-stop:
					return
				default:
				}
				token := make([]byte, 8)
				rand.Read(token)
				msg := []byte(fmt.Sprintf("From: a@example.test\r\nTo: killmail@example.test\r\nSubject: %d-%d\r\n\r\n%x %s\r\n",
					g, i, token, bytes.Repeat([]byte("z"), i%1500)))
				if err := c.Mail("a@example.test", nil); err != nil {
					return
				}
				if err := c.Rcpt("killmail@example.test", nil); err != nil {
					return
				}
				w, err := c.Data()
				if err != nil {
					return
				}
				w.Write(msg)
				resp, err := w.CloseWithResponse()
				if err != nil {
					return // no 250: nothing promised
				}
				m := storedAs.FindStringSubmatch(resp.StatusText)
				if m == nil {
					t.Errorf("250 without a capture id: %q", resp.StatusText)
					return
				}
				id, _ := strconv.ParseInt(m[1], 10, 64)
				mu.Lock()
				acked[id] = msg
				mu.Unlock()
			}
		}(g)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d messages were accepted before the kill", len(acked))
	}

	p2 := MustStart(t, "-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", data)
	mustBeStored(t, p2.URL, "killmail", acked)
}
