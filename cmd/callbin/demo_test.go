package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/sender"
)

// MustDemo seeds m with a Demo and closes the demo at the end of the test
// (before m, which MustRun closed later).
func MustDemo(tb testing.TB, m *Main, interval time.Duration, rounds int) *Demo {
	tb.Helper()
	return mustOpenDemo(tb, &Demo{Main: m, Interval: interval, Rounds: rounds})
}

// mustOpenDemo opens d and closes it at the end of the test.
func mustOpenDemo(tb testing.TB, d *Demo) *Demo {
	tb.Helper()
	if err := d.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			tb.Error(err)
		}
	})
	return d
}

// waitUntil polls cond every 10 ms for at most limit.
func waitUntil(tb testing.TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still not true after %s", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func attemptStatuses(d sender.Delivery) []int {
	var out []int
	for _, a := range d.Attempts {
		if a.Status == nil {
			out = append(out, 0)
		} else {
			out = append(out, *a.Status)
		}
	}
	return out
}

func mustDeliveries(tb testing.TB, m *Main, taskID string) []sender.Delivery {
	tb.Helper()
	ds, err := m.Sender.Deliveries(context.Background(), taskID)
	if err != nil {
		tb.Fatal(err)
	}
	return ds
}

func scenarioName(tb testing.TB, b *inbox.Bin) string {
	tb.Helper()
	if b.Scenario == nil {
		return ""
	}
	var s struct{ Name string }
	if err := json.Unmarshal(b.Scenario, &s); err != nil {
		tb.Fatalf("bin %s scenario %s: %v", b.Name, b.Scenario, err)
	}
	return s.Name
}

// TestDemoSeeds checks the seeded state: the three bins with their
// scripts, the sample captures, and the three tasks, completed, whose
// callbacks go where they should and progress as scripted: 500, 500, 500,
// 200 for the recovering bin; 200 at once for the hook; a ladder of 500s
// still climbing for the bin that is down. Then the rounds: each completes
// one more task, and the recovering bin's script starts again for it.
func TestDemoSeeds(t *testing.T) {
	m := MustRun(t, "-time-scale", "3600")
	d := MustDemo(t, m, 100*time.Millisecond, 2)
	ctx := t.Context()
	base := demoBaseURL(m)

	if want := []string{DemoRecovers, DemoDown, DemoHook}; !slices.Equal(d.Seeded.Bins, want) {
		t.Errorf("seeded bins: got %v, want %v", d.Seeded.Bins, want)
	}
	for _, tt := range []struct{ bin, scenario string }{
		{DemoRecovers, "fail-3-then-ok"},
		{DemoDown, "always-500"},
		{DemoHook, ""},
	} {
		b, err := m.Store.FindBin(ctx, tt.bin)
		if err != nil {
			t.Fatalf("bin %s: %v", tt.bin, err)
		}
		if got := scenarioName(t, b); got != tt.scenario {
			t.Errorf("bin %s: got scenario %q, want %q", tt.bin, got, tt.scenario)
		}
	}

	if len(d.Seeded.Captures) != 3 {
		t.Fatalf("sample captures: got %d, want 3", len(d.Seeded.Captures))
	}
	var kinds []string
	for _, id := range d.Seeded.Captures {
		c, err := m.Store.FindCapture(ctx, DemoHook, id)
		if err != nil {
			t.Fatalf("sample capture %d: %v", id, err)
		}
		kinds = append(kinds, c.Kind)
		switch c.Kind {
		case inbox.KindHTTP:
			if c.Method != "POST" || c.Reply.Status != 200 || len(c.Body) == 0 {
				t.Errorf("sample capture %d: got %s %s reply %d body %d bytes, want a POST answered 200 with a body", id, c.Method, c.Path, c.Reply.Status, len(c.Body))
			}
		case inbox.KindEmail:
			if c.Email == nil || c.Email.Subject != "Your invoice INV-1042" || c.Email.HTML == "" || len(c.Email.Attachments) != 1 || c.Reply.SMTPCode != 250 {
				t.Errorf("sample e-mail %d: got %+v reply %+v, want the invoice with its HTML part and attachment, answered 250", id, c.Email, c.Reply)
			}
		}
	}
	slices.Sort(kinds)
	if want := []string{inbox.KindEmail, inbox.KindHTTP, inbox.KindHTTP}; !slices.Equal(kinds, want) {
		t.Errorf("sample capture kinds: got %v, want %v", kinds, want)
	}

	if len(d.Seeded.Tasks) != 3 {
		t.Fatalf("seeded tasks: got %d, want 3", len(d.Seeded.Tasks))
	}
	recovers, down, hook := d.Seeded.Tasks[0], d.Seeded.Tasks[1], d.Seeded.Tasks[2]
	for i, bin := range []string{DemoRecovers, DemoDown, DemoHook} {
		task, err := m.Sender.GetTask(ctx, d.Seeded.Tasks[i])
		if err != nil {
			t.Fatal(err)
		}
		if task.Status != sender.StatusCompleted || task.CallbackURL == nil || *task.CallbackURL != base+"/b/"+bin {
			t.Errorf("task %d: got status %s, callback %v; want completed, with its callback to %s", i, task.Status, task.CallbackURL, bin)
		}
	}

	// Recovering: three 500s, then 200, and the task knows it.
	waitUntil(t, 10*time.Second, "the recovering bin's callback succeeds", func() bool {
		task, err := m.Sender.GetTask(ctx, recovers)
		return err == nil && task.CallbackSucceeded != nil
	})
	task, _ := m.Sender.GetTask(ctx, recovers)
	if !*task.CallbackSucceeded {
		t.Errorf("recovering task: got callback_succeeded false, want true")
	}
	if ds := mustDeliveries(t, m, recovers); len(ds) != 1 || !slices.Equal(attemptStatuses(ds[0]), []int{500, 500, 500, 200}) {
		t.Errorf("recovering task deliveries: got %+v, want one with attempts 500, 500, 500, 200", ds)
	}

	// Hook: 200 at once.
	waitUntil(t, 10*time.Second, "the hook's callback succeeds", func() bool {
		ds := mustDeliveries(t, m, hook)
		return len(ds) == 1 && ds[0].State == "succeeded"
	})
	if ds := mustDeliveries(t, m, hook); !slices.Equal(attemptStatuses(ds[0]), []int{200}) {
		t.Errorf("hook task: got attempts %v, want [200]", attemptStatuses(ds[0]))
	}

	// Down: the ladder climbs, every attempt a 500, more to come.
	var first int
	waitUntil(t, 10*time.Second, "the failing bin's ladder climbs past 3 attempts", func() bool {
		ds := mustDeliveries(t, m, down)
		if len(ds) != 1 {
			return false
		}
		first = len(ds[0].Attempts)
		return first >= 3
	})
	waitUntil(t, 10*time.Second, "the failing bin's ladder goes on", func() bool {
		ds := mustDeliveries(t, m, down)
		return len(ds) == 1 && len(ds[0].Attempts) > first
	})
	ds := mustDeliveries(t, m, down)
	if len(ds) != 1 {
		t.Fatalf("failing bin: got %d deliveries, want 1", len(ds))
	}
	for i, s := range attemptStatuses(ds[0]) {
		if s != 500 && !ds[0].Attempts[i].InFlight {
			t.Errorf("failing bin attempt %d: got %d, want 500", i+1, s)
		}
	}
	// Still climbing: a retry is due, or an attempt is under way (an
	// in-flight delivery has no next attempt time yet).
	if n, st := len(ds[0].Attempts), ds[0].State; n >= ds[0].MaxAttempts || (st != "pending" && st != "in_flight") ||
		(st == "pending" && ds[0].NextAttemptAt == nil) {
		t.Errorf("failing bin: got %d of %d attempts, state %s, next %v; want the ladder still climbing", n, ds[0].MaxAttempts, st, ds[0].NextAttemptAt)
	}
	// The bin recorded what it answered.
	caps, err := m.Store.FindCaptures(ctx, inbox.CaptureFilter{Bin: DemoDown, Oldest: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) < 2 || caps[0].Reply.Status != 500 {
		t.Errorf("failing bin captures: got %d, want at least 2, answered 500", len(caps))
	}

	// Two rounds: one more task towards each bin, the recovering one
	// failing three times again.
	var page *sender.TaskPage
	waitUntil(t, 10*time.Second, "two rounds", func() bool {
		page, err = m.Sender.ListTasks(ctx, sender.TaskFilter{Limit: 100})
		return err == nil && len(page.Docs) == 5
	})
	var round string
	for _, tk := range page.Docs {
		if !slices.Contains(d.Seeded.Tasks, tk.TaskID) && *tk.CallbackURL == base+"/b/"+DemoRecovers {
			round = tk.TaskID
		}
	}
	if round == "" {
		t.Fatalf("rounds: got no task towards %s", DemoRecovers)
	}
	waitUntil(t, 10*time.Second, "the round's callback succeeds", func() bool {
		ds := mustDeliveries(t, m, round)
		return len(ds) == 1 && ds[0].State == "succeeded"
	})
	if got := attemptStatuses(mustDeliveries(t, m, round)[0]); !slices.Equal(got, []int{500, 500, 500, 200}) {
		t.Errorf("round towards %s: got attempts %v, want 500, 500, 500, 200 (its script started again)", DemoRecovers, got)
	}
}

// A round towards the recovering bin waits while the callback of the last
// task towards it is still retrying: starting the bin's script again then
// would answer that ladder's next attempt too. At time scale 1 the seeded
// task's first retry is seconds away, so every tick of the test finds it
// undecided.
func TestDemoRoundWaitsForTheRecoveringLadder(t *testing.T) {
	m := MustRun(t, "-time-scale", "1")
	msgs := make(chan string, 64)
	d := mustOpenDemo(t, &Demo{Main: m, Interval: 20 * time.Millisecond, Rounds: 2, Logger: slog.New(msgHandler(msgs))})
	waitUntil(t, 10*time.Second, "the recovering task's first attempt answered 500", func() bool {
		ds := mustDeliveries(t, m, d.Seeded.Tasks[0])
		return len(ds) == 1 && slices.Equal(attemptStatuses(ds[0]), []int{500}) && ds[0].NextAttemptAt != nil
	})
	for waits := 0; waits < 3; {
		select {
		case msg := <-msgs:
			if strings.HasPrefix(msg, "demo round waits") {
				waits++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the first round did not wait for the recovering ladder (%d waits seen)", waits)
		}
	}
	page, err := m.Sender.ListTasks(t.Context(), sender.TaskFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Docs) != 3 {
		t.Errorf("tasks: got %d, want the 3 seeded ones only while the first round waits", len(page.Docs))
	}
	ds := mustDeliveries(t, m, d.Seeded.Tasks[0])
	if len(ds) != 1 || !slices.Equal(attemptStatuses(ds[0]), []int{500}) || ds[0].NextAttemptAt == nil {
		t.Errorf("recovering task: got %+v, want one delivery with one 500 and a retry to come", ds)
	}
}

// msgHandler is a slog.Handler that sends each record's message to ch,
// dropping it when ch is full.
type msgHandler chan<- string

func (h msgHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h msgHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h msgHandler) WithGroup(string) slog.Handler            { return h }
func (h msgHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r.Message:
	default:
	}
	return nil
}

func TestDemoNeedsAnOpenMain(t *testing.T) {
	d := &Demo{Main: NewMain()}
	if err := d.Open(); !errors.Is(err, errDemoNotOpen) {
		t.Errorf("got %v, want %v", err, errDemoNotOpen)
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		scale   float64
		tmpData bool
	}{
		{"defaults", nil, nil, DemoTimeScale, true},
		{"flag", []string{"-time-scale", "3600", "-data", "d"}, nil, 3600, false},
		{"env", nil, map[string]string{"CALLBIN_TIME_SCALE": "60", "CALLBIN_DATA": "d"}, 60, false},
		{"flag over env", []string{"-time-scale", "1"}, map[string]string{"CALLBIN_TIME_SCALE": "60"}, 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, tmp, err := newDemoMain(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if tmp {
				os.RemoveAll(m.DataDir)
			}
			if m.TimeScale != tt.scale || tmp != tt.tmpData {
				t.Errorf("got time scale %g, temporary data %v; want %g, %v", m.TimeScale, tmp, tt.scale, tt.tmpData)
			}
		})
	}
	if _, _, err := newDemoMain([]string{"-time-scale", "0"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("-time-scale 0: got no error")
	}
	if _, _, err := newDemoMain([]string{"-help"}, func(string) string { return "" }, io.Discard); err != errHelp {
		t.Errorf("-help: got %v, want errHelp", err)
	}
}

// TestDemoCommand runs `callbin demo` as main does: it prints the URL to
// open, serves the seeded state there, and exits 0 on its signal.
func TestDemoCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := filepath.Join(t.TempDir(), "data")
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		defer outW.Close()
		done <- demo(ctx, []string{"-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", data, "-time-scale", "3600"}, func(string) string { return "" }, outW, io.Discard)
	}()
	var tasksURL string
	lines := bufio.NewScanner(outR)
	for lines.Scan() {
		if f := strings.Fields(lines.Text()); len(f) > 0 && strings.HasSuffix(f[0], "/tasks") {
			tasksURL = f[0]
			break
		}
	}
	go io.Copy(io.Discard, outR)
	if tasksURL == "" {
		t.Fatalf("got no /tasks URL printed (exit %v)", <-done)
	}
	resp, err := http.Get(tasksURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET %s: got %d %s, want the UI page", tasksURL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	base := strings.TrimSuffix(tasksURL, "/tasks")
	status, body := get(t, base+"/api/v1/bins")
	var bins struct{ Items []struct{ Name string } }
	if err := json.Unmarshal(body, &bins); status != 200 || err != nil {
		t.Fatalf("bins: got %d %s", status, body)
	}
	var names []string
	for _, b := range bins.Items {
		names = append(names, b.Name)
	}
	for _, want := range []string{DemoRecovers, DemoDown, DemoHook} {
		if !slices.Contains(names, want) {
			t.Errorf("bins: got %v, want %s among them", names, want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code: got %d, want 0", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not return after its context ended")
	}
	if _, err := os.Stat(filepath.Join(data, "inbox.db")); err != nil {
		t.Errorf("the --data folder: %v, want it kept", err)
	}
}
