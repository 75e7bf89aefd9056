package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/scenarios"
	"github.com/callbin/callbin/sender"
)

// The demo's bins.
const (
	DemoRecovers = "demo-recovers" // fail-3-then-ok: three 500s, then 200
	DemoDown     = "demo-down"     // always-500: every retry of the ladder fails
	DemoHook     = "demo-hook"     // the default reply: accepts everything
)

// Defaults of `callbin demo`.
const (
	// DemoTimeScale is the sender clock speed of the demo unless
	// --time-scale (or CALLBIN_TIME_SCALE) says otherwise: the 24-hour
	// retry ladder runs in about 2.5 minutes.
	DemoTimeScale   = 600
	DemoInterval    = 20 * time.Second
	DemoRounds      = 30
	demoSeedTimeout = 30 * time.Second
)

// Demo seeds an open Main with what shows callbacks failing and retrying
// live in the browser: a bin that fails three times then recovers, a bin
// that always fails, a bin that accepts, a task completed towards each of
// them (so their callbacks start at once), and sample captures (two
// requests and an e-mail). While it is
// open it keeps the page moving: every Interval one more task is completed,
// towards the recovering bin (its script started again) and the failing
// one in turn, at most Rounds times.
type Demo struct {
	Main     *Main
	Interval time.Duration // between rounds; 0: DemoInterval; negative: no rounds
	Rounds   int           // rounds at most; 0: DemoRounds
	Logger   *slog.Logger  // nil: Main's logger

	// Seeded is what Open seeded.
	Seeded DemoSeed

	logger *slog.Logger
	client *http.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// errDemoNotOpen: Demo.Open needs an open Main.
var errDemoNotOpen = errors.New("demo: Main is not open")

// DemoSeed is what the demo created.
type DemoSeed struct {
	Bins     []string // DemoRecovers, DemoDown, DemoHook
	Tasks    []string // task ids, in the order they were completed
	Captures []int64  // the sample captures in DemoHook: two HTTP requests, an e-mail when Main has the SMTP sink

	recovering string // the task towards DemoRecovers
}

// Open seeds the demo and starts its rounds. Main must be open.
func (d *Demo) Open() error {
	if d.Main == nil || d.Main.Sender == nil || d.Main.Scripts == nil {
		return errDemoNotOpen
	}
	d.logger = d.Logger
	if d.logger == nil {
		d.logger = d.Main.logger()
	}
	d.logger = d.logger.With("component", "demo")
	d.client = &http.Client{Timeout: 10 * time.Second}

	ctx, cancel := context.WithTimeout(context.Background(), demoSeedTimeout)
	defer cancel()
	seed, err := d.seed(ctx)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.Seeded = seed

	rctx, rcancel := context.WithCancel(context.Background())
	d.cancel = rcancel
	if d.Interval >= 0 {
		d.wg.Add(1)
		go d.rounds(rctx)
	}
	return nil
}

// Close stops the rounds and waits for the one under way.
func (d *Demo) Close(ctx context.Context) error {
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("demo: close: %w", ctx.Err())
	}
}

func (d *Demo) seed(ctx context.Context) (DemoSeed, error) {
	var s DemoSeed
	for _, b := range []struct{ bin, script string }{
		{DemoRecovers, "fail-3-then-ok"},
		{DemoDown, "always-500"},
	} {
		script, ok := scenarios.Lookup(b.script)
		if !ok {
			return s, fmt.Errorf("no ready scenario %q", b.script)
		}
		if err := d.Main.Scripts.Set(ctx, b.bin, script); err != nil {
			return s, fmt.Errorf("bin %s: %w", b.bin, err)
		}
		s.Bins = append(s.Bins, b.bin)
	}
	if err := d.Main.Store.CreateBin(ctx, DemoHook, nil, time.Now()); err != nil && !errors.Is(err, inbox.ErrConflict) {
		return s, fmt.Errorf("bin %s: %w", DemoHook, err)
	}
	s.Bins = append(s.Bins, DemoHook)

	// Two captures, sent over HTTP like any other.
	base := demoBaseURL(d.Main)
	for _, c := range []struct{ path, ctype, body string }{
		{"/orders?shop=demo", "application/json", `{"event":"order.paid","order":{"id":"ord_1042","total":"42.00","currency":"EUR","items":[{"sku":"BK-1","qty":2}]}}`},
		{"/forms/contact", "application/x-www-form-urlencoded", "name=Ada+Lovelace&email=ada%40example.com&message=Hello+from+the+demo"},
	} {
		if err := d.post(ctx, base+"/b/"+DemoHook+c.path, c.ctype, c.body); err != nil {
			return s, err
		}
	}
	n := 2
	if d.Main.SMTP != nil {
		if err := d.mail(demoHostPort(d.Main.SMTP.ListenAddr())); err != nil {
			return s, err
		}
		n++
	}
	caps, err := d.Main.Store.FindCaptures(ctx, inbox.CaptureFilter{Bin: DemoHook, Limit: n})
	if err != nil {
		return s, fmt.Errorf("sample captures: %w", err)
	}
	for _, c := range caps {
		s.Captures = append(s.Captures, c.ID)
	}

	for _, t := range []struct{ bin, instruction string }{
		{DemoRecovers, "Is the car in this photo red or blue? (its callback receiver fails three times, then recovers)"},
		{DemoDown, "Is the car in this photo red or blue? (its callback receiver is down: every retry fails)"},
		{DemoHook, "Is the car in this photo red or blue? (its callback receiver accepts at once)"},
	} {
		id, err := d.task(ctx, base+"/b/"+t.bin, t.instruction)
		if err != nil {
			return s, err
		}
		s.Tasks = append(s.Tasks, id)
		if t.bin == DemoRecovers {
			s.recovering = id
		}
	}
	d.logger.Info("demo seeded", "bins", len(s.Bins), "tasks", len(s.Tasks), "captures", len(s.Captures))
	return s, nil
}

// task creates a categorization task with its callback to callbackURL and
// completes it, which queues the callback.
func (d *Demo) task(ctx context.Context, callbackURL, instruction string) (string, error) {
	body, err := json.Marshal(map[string]any{
		"callback_url":    callbackURL,
		"instruction":     instruction,
		"attachment_type": "image",
		"attachment":      "https://example.com/images/car.jpg",
		"categories":      []string{"red", "blue"},
		"metadata":        map[string]any{"source": "callbin demo"},
	})
	if err != nil {
		return "", err
	}
	t, err := d.Main.Sender.CreateTask(ctx, sender.TypeCategorization, body)
	if err != nil {
		return "", fmt.Errorf("create task: %w", err)
	}
	if _, err := d.Main.Sender.CompleteTask(ctx, t.TaskID, json.RawMessage(`{"category":"red"}`)); err != nil {
		return "", fmt.Errorf("complete task %s: %w", t.TaskID, err)
	}
	return t.TaskID, nil
}

func (d *Demo) post(ctx context.Context, url, ctype, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "callbin-demo/"+Version())
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("sample capture: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sample capture %s: got status %d, want 200", url, resp.StatusCode)
	}
	return nil
}

// demoMail is the sample e-mail: a text part, an HTML part (shown in a
// sandboxed frame) and an attachment.
const demoMail = "From: Billing <billing@example.com>\r\n" +
	"To: " + DemoHook + "@callbin.local\r\n" +
	"Subject: Your invoice INV-1042\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n" +
	"--mixed\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
	"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Ada,\r\n\r\nYour invoice INV-1042 of 42.00 EUR is attached.\r\n" +
	"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<h1>Invoice INV-1042</h1><p>Hello Ada,</p><p>Your invoice of <b>42.00 EUR</b> is attached.</p>\r\n" +
	"--alt--\r\n" +
	"--mixed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"INV-1042.txt\"\r\n\r\nINV-1042  2 x BK-1  42.00 EUR\r\n" +
	"--mixed--\r\n"

// mail sends the sample e-mail to DemoHook through the SMTP sink at addr.
func (d *Demo) mail(addr string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return fmt.Errorf("sample e-mail: %w", err)
	}
	defer c.Close()
	if err := c.SendMail("billing@example.com", []string{DemoHook + "@callbin.local"}, strings.NewReader(demoMail)); err != nil {
		return fmt.Errorf("sample e-mail: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("sample e-mail: %w", err)
	}
	return nil
}

// rounds completes one more task every Interval, towards DemoRecovers
// (its script started again, so it fails three times again) and DemoDown
// in turn. The recovering bin's script is shared by every delivery towards
// it, so a round towards it waits (tick after tick) until the callback of
// the previous task towards it is decided: started again under a ladder
// still climbing, the script would answer that ladder's next attempt too.
func (d *Demo) rounds(ctx context.Context) {
	defer d.wg.Done()
	interval := d.Interval
	if interval == 0 {
		interval = DemoInterval
	}
	n := d.Rounds
	if n <= 0 {
		n = DemoRounds
	}
	base := demoBaseURL(d.Main)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	recovering := d.Seeded.recovering // the last task towards DemoRecovers
	for i := 0; i < n; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		bin := DemoRecovers
		if i%2 == 1 {
			bin = DemoDown
		}
		if bin == DemoRecovers && recovering != "" {
			t, err := d.Main.Sender.GetTask(ctx, recovering)
			if err == nil && t.CallbackSucceeded == nil {
				d.logger.Debug("demo round waits: the recovering bin's last callback is still retrying", "round", i+1, "task", recovering)
				continue
			}
		}
		i++
		if bin == DemoRecovers {
			if err := d.Main.Scripts.Reset(ctx, bin); err != nil {
				d.logger.Warn("demo round", "round", i, "err", err)
				continue
			}
		}
		id, err := d.task(ctx, base+"/b/"+bin, fmt.Sprintf("Round %d of the demo: is the car red or blue?", i))
		if err != nil {
			if ctx.Err() == nil {
				d.logger.Warn("demo round", "round", i, "err", err)
			}
			continue
		}
		if bin == DemoRecovers {
			recovering = id
		}
		d.logger.Info("demo round", "round", i, "task", id, "bin", bin)
	}
}

// demoBaseURL is the URL through which this process reaches its own HTTP
// server.
func demoBaseURL(m *Main) string {
	return "http://" + demoHostPort(m.httpLn.Addr().String())
}

// demoHostPort is the address through which this process reaches its own
// listener on addr: a listener on every address is reached on loopback.
func demoHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

const demoUsage = `Usage: callbin demo [serve flags]

Starts callbin like serve, with the sender clock at %dx unless
--time-scale says otherwise, and seeds it for a live demo: a bin that
fails three times then recovers (%s), one that always fails
(%s), one that accepts (%s), a task completed towards
each, and sample captures (two requests, an e-mail). Every %s one
more task follows, %d times at most; one towards the recovering bin
waits until the previous callback there is decided. Without --data (or
CALLBIN_DATA) the data lives in a temporary folder removed at exit.

Flags:
`

// demo runs `callbin demo` and returns the exit code.
func demo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	m, tmp, err := newDemoMain(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "callbin demo:", err)
		return 2
	}
	if tmp {
		defer os.RemoveAll(m.DataDir)
	}
	if err := m.Open(); err != nil {
		fmt.Fprintln(stderr, "callbin demo:", err)
		return 1
	}
	closeAll := func(d *Demo) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		var errs []error
		if d != nil {
			errs = append(errs, d.Close(ctx))
		}
		return errors.Join(append(errs, m.Close(ctx))...)
	}
	d := &Demo{Main: m}
	if err := d.Open(); err != nil {
		fmt.Fprintln(stderr, "callbin demo:", errors.Join(err, closeAll(nil)))
		return 1
	}
	base := demoBaseURL(m)
	fmt.Fprintf(stdout, "callbin demo is running (sender clock %gx). Open:\n\n", m.TimeScale)
	tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
	for _, l := range [][2]string{
		{"/tasks", "callbacks failing and retrying live"},
		{"/bins/" + DemoRecovers, "what the recovering receiver got"},
		{"/bins/" + DemoDown, "the receiver that is down (the retry ladder)"},
		{"/bins/" + DemoHook, "sample captures"},
	} {
		fmt.Fprintf(tw, "  %s%s\t%s\n", base, l[0], l[1])
	}
	tw.Flush()
	if m.AuthToken != "" {
		fmt.Fprintf(stdout, "\nThis callbin has an auth token: open %s/tasks?token=TOKEN once, and the browser keeps it.\n", base)
	}
	fmt.Fprintf(stdout, "\nSend your own: curl -d '{\"hello\":\"world\"}' %s/b/%s\n", base, DemoHook)
	if tmp {
		fmt.Fprintf(stdout, "Data in %s, removed at exit (give --data to keep it).\n", m.DataDir)
	}

	var runErr error
	select {
	case <-ctx.Done():
		m.Logger.Info("shutting down")
	case runErr = <-m.srvErr:
	}
	if err := errors.Join(runErr, closeAll(d)); err != nil {
		fmt.Fprintln(stderr, "callbin demo:", err)
		return 1
	}
	return 0
}

// newDemoMain is a Main configured by the serve flags with the demo's
// defaults: DemoTimeScale, and a fresh temporary data folder (tmp) when
// neither --data nor CALLBIN_DATA is given.
func newDemoMain(args []string, getenv func(string) string, stderr io.Writer) (m *Main, tmp bool, err error) {
	m = NewMain()
	m.Stderr = stderr
	m.TimeScale = DemoTimeScale
	m.DataDir = ""
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fmt.Fprintf(stderr, demoUsage, DemoTimeScale, DemoRecovers, DemoDown, DemoHook, DemoInterval, DemoRounds)
			fs := m.flagSet()
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return nil, false, errHelp
		}
	}
	if err := m.ParseFlags(args, getenv); err != nil {
		return nil, false, err
	}
	if m.DataDir == "" {
		dir, err := os.MkdirTemp("", "callbin-demo-")
		if err != nil {
			return nil, false, fmt.Errorf("data folder: %w", err)
		}
		m.DataDir, tmp = dir, true
	}
	return m, tmp, nil
}
