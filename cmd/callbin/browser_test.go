package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"

	"github.com/callbin/callbin/frontend/browsertest"
)

// Browser tests: headless Chromium (through chromedp) against a real
// callbin, opened on 127.0.0.1:0 with its data in a temporary folder. They
// skip where no Chromium is installed unless CALLBIN_BROWSER_TESTS is set;
// with CALLBIN_SCREENSHOTS=DIR they save screenshots there.

// browserAPI calls the JSON API of m: body (when not nil) is sent as JSON,
// the task API (/v1/...) gets an API key as basic auth, and the answer is
// decoded into out (when not nil). It returns the status.
func browserAPI(tb testing.TB, m *Main, method, path string, body, out any) int {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, m.HTTPURL()+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasPrefix(path, "/v1/") {
		req.SetBasicAuth("test_key", "")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			tb.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// browserPost sends a capture the way a user would: with curl when it is
// installed, else with net/http. headers are name, value pairs. It returns
// the reply's status.
func browserPost(tb testing.TB, rawURL, contentType, body string, headers ...string) int {
	tb.Helper()
	if curl, err := exec.LookPath("curl"); err == nil {
		args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
			"-H", "Content-Type: " + contentType, "--data-binary", "@-"}
		for i := 0; i+1 < len(headers); i += 2 {
			args = append(args, "-H", headers[i]+": "+headers[i+1])
		}
		cmd := exec.Command(curl, append(args, rawURL)...)
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.Output()
		if err != nil {
			tb.Fatalf("curl %s: %v", rawURL, err)
		}
		var status int
		if _, err := fmt.Sscan(string(out), &status); err != nil {
			tb.Fatalf("curl %s: status %q: %v", rawURL, out, err)
		}
		return status
	}
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", rawURL, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// rawRequest writes req (an HTTP/1.1 request, as is) to m's HTTP listener
// and returns the reply's status: for request targets that no HTTP client
// library would send unescaped.
func rawRequest(tb testing.TB, m *Main, req string) int {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(m.HTTPURL(), "http://"), 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("raw request: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type browserCapture struct {
	ID      int64      `json:"id"`
	Path    string     `json:"path"`
	Query   string     `json:"query"`
	Headers [][]string `json:"headers"`
	Body    string     `json:"body"`
	Reply   struct {
		Status int `json:"status"`
	} `json:"reply"`
}

// binCaptures lists a bin's captures, oldest first.
func binCaptures(tb testing.TB, m *Main, bin string) []browserCapture {
	tb.Helper()
	var page struct{ Items []browserCapture }
	if status := browserAPI(tb, m, "GET", "/api/v1/bins/"+url.PathEscape(bin)+"/captures?limit=500", nil, &page); status != 200 {
		tb.Fatalf("list captures of %s: got %d, want 200", bin, status)
	}
	slices.Reverse(page.Items)
	return page.Items
}

func newestCaptureID(tb testing.TB, m *Main, bin string) int64 {
	tb.Helper()
	caps := binCaptures(tb, m, bin)
	if len(caps) == 0 {
		tb.Fatalf("bin %s: got no capture, want at least one", bin)
	}
	return caps[len(caps)-1].ID
}

func captureRow(id int64) string { return fmt.Sprintf(`ul.captures li[data-id="%d"]`, id) }

// TestBrowserCaptureAppears: a capture posted with curl while the bin's
// page is open appears in it, newest first, and its detail shows the body
// as pretty JSON, the headers and the query.
func TestBrowserCaptureAppears(t *testing.T) {
	p := browsertest.MustBrowser(t)
	m := MustRun(t)
	base := m.HTTPURL()

	// Some history, so the page has a list to put the new one on.
	browserPost(t, base+"/b/orders/shop", "application/x-www-form-urlencoded", "item=book&qty=1")
	browserPost(t, base+"/b/orders/shop?retry=1", "text/plain", "hello from a plain text webhook")
	first := newestCaptureID(t, m, "orders")

	p.Open(t, base+"/bins/orders", captureRow(first))
	p.WaitConnected(t)

	body := `{"event":"order.paid","order":{"id":12345678901234567890,"total":"42.00","items":[{"sku":"BK-1","qty":2}]}}`
	if status := browserPost(t, base+"/b/orders/webhooks/stripe?attempt=1&source=curl", "application/json", body,
		"X-Request-Id", "req-7f3a", "User-Agent", "curl-webhook/1.0"); status != 200 {
		t.Fatalf("capture: got %d, want 200", status)
	}
	id := newestCaptureID(t, m, "orders")
	p.Visible(t, captureRow(id))
	// A capture event carries the path, not the query.
	if got, want := p.WaitText(t, `ul.captures li:first-child .path`, "/b/orders/webhooks/stripe"), "/b/orders/webhooks/stripe"; !strings.HasPrefix(got, want) {
		t.Errorf("newest row: got %q, want it to start %q", got, want)
	}
	if got := p.WaitText(t, `.bin-count`, "3"); got != "3" {
		t.Errorf("capture count: got %q, want 3", got)
	}
	if n := p.Count(t, `ul.captures li`); n != 3 {
		t.Errorf("rows: got %d, want 3", n)
	}

	p.Click(t, captureRow(id)+` a`) // the capture list is redrawn as captures come
	p.Visible(t, `pre.body.json`)
	if got := browsertest.Eval[string](t, p, `location.pathname`); got != fmt.Sprintf("/bins/orders/captures/%d", id) {
		t.Errorf("after the click: got %q, want the capture's deep link", got)
	}
	if got := p.TextContent(t, `pre.body.json`); !strings.Contains(got, "\"id\": 12345678901234567890,\n") || !strings.Contains(got, `"sku": "BK-1"`) {
		t.Errorf("pretty JSON: got %q, want it indented with the big number intact", got)
	}
	if got := p.Text(t, `table.headers`); !strings.Contains(got, "req-7f3a") || !strings.Contains(got, "curl-webhook/1.0") {
		t.Errorf("headers: got %q, want X-Request-Id and User-Agent", got)
	}
	if got := p.Text(t, `table.query`); !strings.Contains(got, "source") || !strings.Contains(got, "curl") {
		t.Errorf("query: got %q, want source=curl", got)
	}
	if got := p.TextContent(t, `pre.curl-cmd`); !strings.Contains(got, base+"/b/orders/webhooks/stripe?attempt=1&source=curl") || !strings.Contains(got, `-H 'X-Request-Id: req-7f3a'`) {
		t.Errorf("curl command: got %q, want the URL and the headers", got)
	}
	p.Screenshot(t, "bin-view.png")
	if ex := p.Exceptions(); len(ex) > 0 {
		t.Errorf("exceptions in the page: got %q, want none", ex)
	}
}

// TestBrowserAttemptTimeline: a task whose callback goes to a bin that
// fails three times, then accepts (fail-3-then-ok), completed while its
// page is open: the page fills in live with the delivery's four attempts,
// three failed and one ok, in time order on the timeline.
func TestBrowserAttemptTimeline(t *testing.T) {
	p := browsertest.MustBrowser(t)
	m := MustRun(t, "-time-scale", "3600") // the retries come in milliseconds
	if status := browserAPI(t, m, "POST", "/api/v1/bins", map[string]any{"name": "flaky", "scenario": "fail-3-then-ok"}, nil); status != 201 {
		t.Fatalf("create bin: got %d, want 201", status)
	}
	var task struct {
		TaskID string `json:"task_id"`
	}
	status := browserAPI(t, m, "POST", "/v1/task/categorization", map[string]any{
		"callback_url":    m.HTTPURL() + "/b/flaky",
		"instruction":     "Which colour is the car?",
		"attachment_type": "image",
		"attachment":      "https://example.com/car.jpg",
		"categories":      []string{"red", "blue"},
	}, &task)
	if status != 200 || task.TaskID == "" {
		t.Fatalf("create task: got %d %q, want 200 and a task id", status, task.TaskID)
	}

	p.Open(t, m.HTTPURL()+"/tasks/"+task.TaskID, `.task-summary dl`)
	p.WaitConnected(t)
	p.WaitText(t, `.deliveries`, "No callback yet")
	if status := browserAPI(t, m, "POST", "/v1/task/"+task.TaskID+"/complete", map[string]any{"response": map[string]any{"category": "red"}}, nil); status != 200 {
		t.Fatalf("complete: got %d, want 200", status)
	}
	// The page learns of each attempt from the stream and reads the
	// deliveries again.
	p.Visible(t, `svg.timeline circle.dot.ok`)
	fails, oks, next := p.Count(t, `svg.timeline circle.dot.fail`), p.Count(t, `svg.timeline circle.dot.ok`), p.Count(t, `svg.timeline circle.dot.next`)
	if fails != 3 || oks != 1 || next != 0 {
		t.Errorf("timeline dots: got %d failed, %d ok, %d next; want 3, 1, 0", fails, oks, next)
	}
	xs := browsertest.Eval[[]float64](t, p, `[...document.querySelectorAll('svg.timeline circle.dot')].map(c => +c.getAttribute('cx'))`)
	if len(xs) != 4 || !slices.IsSorted(xs) || xs[0] >= xs[3] {
		t.Errorf("dot positions: got %v, want four increasing along the axis", xs)
	}
	order := browsertest.Eval[[]string](t, p, `[...document.querySelectorAll('svg.timeline circle.dot')].map(c => c.classList.contains('ok') ? 'ok' : 'fail')`)
	if want := []string{"fail", "fail", "fail", "ok"}; !slices.Equal(order, want) {
		t.Errorf("dots in order: got %v, want %v", order, want)
	}
	results := browsertest.Eval[[]string](t, p, `[...document.querySelectorAll('table.attempts tbody tr td:nth-child(4)')].map(td => td.textContent)`)
	if want := []string{"500", "500", "500", "200"}; !slices.Equal(results, want) {
		t.Errorf("attempts table: got %v, want %v", results, want)
	}
	p.WaitText(t, `.task-summary`, "delivered")
	p.WaitText(t, `.delivery-head`, "4 attempts, 1 ok", "succeeded")
	p.Screenshot(t, "task-timeline.png")

	// The bin saw the same sequence.
	var replies []int
	for _, c := range binCaptures(t, m, "flaky") {
		replies = append(replies, c.Reply.Status)
	}
	if want := []int{500, 500, 500, 200}; !slices.Equal(replies, want) {
		t.Errorf("replies the bin gave: got %v, want %v", replies, want)
	}
	p.Open(t, m.HTTPURL()+"/tasks", fmt.Sprintf(`tr[data-task=%q]`, task.TaskID))
	p.WaitText(t, fmt.Sprintf(`tr[data-task=%q]`, task.TaskID), "completed", "delivered")
	if ex := p.Exceptions(); len(ex) > 0 {
		t.Errorf("exceptions in the page: got %q, want none", ex)
	}
}

// TestBrowserPayloadsRunNothing: captures whose path, query, headers and
// body carry script payloads, and an e-mail whose HTML part carries
// scripts (sent through the SMTP sink), are shown as text and run nothing. Each payload would mark
// window.__pwned and send a beacon capture to the bin "pwned" (allowed by
// the page's CSP, so it would arrive): neither may happen.
func TestBrowserPayloadsRunNothing(t *testing.T) {
	p := browsertest.MustBrowser(t)
	m := MustRun(t)
	base := m.HTTPURL()
	beacon := func(via string) string { return fmt.Sprintf(`window.__pwned='%s';fetch('/b/pwned/%s')`, via, via) }

	rawPath := `/b/xss/<img/src="x"/onerror="` + beacon("path") + `">`
	query := `next=javascript:` + url.QueryEscape(beacon("query")) + `&x=<script>` + beacon("query-script") + `</script>`
	header := `<script>` + beacon("header") + `</script>`
	body := `<script>` + beacon("body") + `</script><img src=x onerror="` + beacon("body-img") + `"><a href="javascript:` + beacon("body-link") + `">pay</a>`
	req := "POST " + rawPath + "?" + query + " HTTP/1.1\r\n" +
		"Host: " + strings.TrimPrefix(base, "http://") + "\r\n" +
		"Content-Type: text/html\r\n" +
		"X-Evil: " + header + "\r\n" +
		"Referer: javascript:" + beacon("referer") + "\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n", len(body)) +
		"Connection: close\r\n\r\n" + body
	if status := rawRequest(t, m, req); status != 200 {
		t.Fatalf("hostile capture: got %d, want 200", status)
	}
	caps := binCaptures(t, m, "xss")
	if len(caps) != 1 {
		t.Fatalf("bin xss: got %d captures, want 1", len(caps))
	}
	httpID, storedPath := caps[0].ID, caps[0].Path

	// An e-mail whose HTML part, subject, sender and attachment name carry
	// payloads.
	html := `<h1>Invoice</h1><script>` + beacon("email-script") + `</script>` +
		`<img src=x onerror="` + beacon("email-img") + `"><a href="javascript:` + beacon("email-link") + `">pay</a>` +
		`<iframe src="javascript:parent.` + beacon("email-frame") + `"></iframe>`
	raw := "From: \"<script>" + beacon("from") + "</script>\" <billing@example.com>\r\n" +
		"To: xss@callbin.local\r\n" +
		"Subject: <img src=x onerror=\"" + beacon("subject") + "\">\r\n" +
		"Date: Mon, 2 Feb 2026 15:04:05 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n" +
		"--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPay <b>now</b>\r\n" +
		"--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n" +
		"--b2--\r\n" +
		"--b1\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"<svg onload=alert(1)>.txt\"\r\n\r\nterms\r\n" +
		"--b1--\r\n"
	// Through the SMTP sink, with go-smtp's client.
	sc, err := smtp.Dial(m.SMTP.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SendMail("billing@example.com", []string{"xss@callbin.local"}, strings.NewReader(raw)); err != nil {
		t.Fatalf("send the e-mail: %v", err)
	}
	if err := sc.Quit(); err != nil {
		t.Errorf("quit: %v", err)
	}
	caps = binCaptures(t, m, "xss")
	if len(caps) != 2 {
		t.Fatalf("bin xss: got %d captures, want 2", len(caps))
	}
	mail := caps[1]
	var parsed struct {
		Email struct {
			HTML        string
			Attachments []struct{ Name string }
		}
	}
	if status := browserAPI(t, m, "GET", fmt.Sprintf("/api/v1/bins/xss/captures/%d", mail.ID), nil, &parsed); status != 200 || parsed.Email.HTML == "" || len(parsed.Email.Attachments) != 1 {
		t.Fatalf("e-mail capture: got %d with %+v, want the HTML part and 1 attachment", status, parsed.Email)
	}

	pwned := func(t *testing.T) {
		t.Helper()
		if v := browsertest.Eval[string](t, p, `String(window.__pwned)`); v != "undefined" {
			t.Fatalf("window.__pwned: got %q, want undefined (a payload ran)", v)
		}
		if status := browserAPI(t, m, "GET", "/api/v1/bins/pwned", nil, nil); status != 404 {
			t.Fatalf("bin pwned: got %d, want 404 (a payload sent its beacon)", status)
		}
	}
	noElements := func(t *testing.T) {
		t.Helper()
		if n := p.Count(t, `main script, main img, main svg:not(.timeline), main [onerror], main [onload], main iframe:not(.email-html)`); n != 0 {
			t.Errorf("elements made from captured data: got %d, want 0", n)
		}
		if n := p.Count(t, `[href^="javascript" i], [href*="javascript:" i], [src*="javascript:" i]`); n != 0 {
			t.Errorf("javascript: URLs in the page: got %d, want 0", n)
		}
	}

	t.Run("list", func(t *testing.T) {
		p.Open(t, base+"/bins/xss", captureRow(mail.ID))
		if got := p.WaitText(t, captureRow(httpID)+` .path`, "?next=javascript:"); !strings.HasPrefix(got, storedPath+"?next=javascript:") {
			t.Errorf("row: got %q, want the path %q and query as text", got, storedPath)
		}
		if got := p.WaitText(t, captureRow(mail.ID)+` .path`, "onerror"); got != `<img src=x onerror="`+beacon("subject")+`">` {
			t.Errorf("e-mail row: got %q, want the subject as text", got)
		}
		noElements(t)
		pwned(t)
	})

	t.Run("HTTP capture", func(t *testing.T) {
		p.Open(t, fmt.Sprintf("%s/bins/xss/captures/%d", base, httpID), `table.headers`)
		if got := p.Text(t, `.capture h2 .path`); got != storedPath {
			t.Errorf("path: got %q, want it as text %q", got, storedPath)
		}
		if got := p.TextContent(t, `table.headers`); !strings.Contains(got, header) || !strings.Contains(got, "javascript:"+beacon("referer")) {
			t.Errorf("headers: got %q, want the payloads as text", got)
		}
		if got := p.TextContent(t, `pre.body.raw`); got != body {
			t.Errorf("raw body: got %q, want the payload as text %q", got, body)
		}
		if got := p.TextContent(t, `table.query`); !strings.Contains(got, "javascript:"+beacon("query")) || !strings.Contains(got, "<script>") {
			t.Errorf("query: got %q, want the payloads decoded, as text", got)
		}
		p.Do(t, chromedp.Click(chromedp.CSS(`.switcher button[data-view="Hex"]`)), chromedp.WaitVisible(chromedp.CSS(`pre.body.hex`)))
		noElements(t)
		pwned(t)
	})

	t.Run("e-mail", func(t *testing.T) {
		p.Open(t, fmt.Sprintf("%s/bins/xss/captures/%d", base, mail.ID), `iframe.email-html`)
		p.CheckEmailFrame(t)
		if got := p.Text(t, `.capture h2`); !strings.Contains(got, `<img src=x onerror=`) {
			t.Errorf("subject: got %q, want the payload as text", got)
		}
		if got := p.Text(t, `dl.email-head`); !strings.Contains(got, "<script>") {
			t.Errorf("from: got %q, want the payload as text", got)
		}
		if got := p.Text(t, `ul.attachments`); !strings.Contains(got, "<svg onload=alert(1)>.txt") {
			t.Errorf("attachments: got %q, want the name as text", got)
		}
		p.Screenshot(t, "capture-xss-email.png")
		p.Do(t, chromedp.Click(chromedp.CSS(`.switcher button[data-view="HTML source"]`)))
		if got := p.TextContent(t, `.switcher pre.body`); !strings.Contains(got, `<script>`+beacon("email-script")) {
			t.Errorf("HTML source: got %q, want the HTML as text", got)
		}
		noElements(t)
		pwned(t)
	})

	if ex := p.Exceptions(); len(ex) > 0 {
		t.Errorf("exceptions in the page: got %q, want none", ex)
	}
	pwned(t)
}

// openMainAt opens a callbin on addr with its data in dir. The returned
// close function may be called once by the test; the cleanup calls it if
// the test did not.
func openMainAt(tb testing.TB, addr, dir string) (*Main, func()) {
	tb.Helper()
	m := NewMain()
	m.Stderr = io.Discard
	if err := m.ParseFlags([]string{"-http", addr, "-smtp", "127.0.0.1:0", "-data", dir}, func(string) string { return "" }); err != nil {
		tb.Fatal(err)
	}
	if err := m.Open(); err != nil {
		tb.Fatal(err)
	}
	var once sync.Once
	closeMain := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := m.Close(ctx); err != nil {
				tb.Error(err)
			}
		})
	}
	tb.Cleanup(closeMain)
	return m, closeMain
}

// TestBrowserReconnectAfterRestart: the server stops and a new one starts
// on the same data and address. Captures made while the page is away reach
// it when it reconnects, then live ones
// follow: each once, none missing, and the indicator showed the reconnect.
// A page that had seen a capture live resumes with ?since= (the server
// sends what it missed); a page that had only loaded the list reads the
// newest captures again when it is back.
func TestBrowserReconnectAfterRestart(t *testing.T) {
	p := browsertest.MustBrowser(t)
	for _, seenLive := range []bool{true, false} {
		t.Run(fmt.Sprintf("seen live %v", seenLive), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			m1, stop1 := openMainAt(t, "127.0.0.1:0", dir)
			addr := strings.TrimPrefix(m1.HTTPURL(), "http://")
			base := m1.HTTPURL()
			post := func(path string) {
				t.Helper()
				if status := browserPost(t, base+path, "application/json", `{"at":"`+path+`"}`); status != 200 {
					t.Fatalf("POST %s: got %d, want 200", path, status)
				}
			}

			post("/b/gap/history-1")
			post("/b/other/history")
			post("/b/gap/history-2")
			p.Open(t, base+"/bins/gap", captureRow(newestCaptureID(t, m1, "gap")))
			p.WaitConnected(t)
			last := newestCaptureID(t, m1, "gap")
			if seenLive {
				post("/b/gap/live-before")
				last = newestCaptureID(t, m1, "gap")
				p.Visible(t, captureRow(last))
			}

			p.Do(t, chromedp.Evaluate[chromedp.Void](`window.__states = []; new MutationObserver(() => window.__states.push(document.getElementById('conn').textContent)).observe(document.getElementById('conn'), {childList: true, characterData: true, subtree: true})`))
			socketsBefore := len(p.WebSockets())
			stop1()
			// Committed while the page is away: through a callbin on the
			// same data at an address the page does not know, so that the
			// page cannot be back before them however slow the machine.
			const during = 5
			away, stopAway := openMainAt(t, "127.0.0.1:0", dir)
			for i := range during {
				resp, err := http.Post(fmt.Sprintf("%s/b/gap/after-restart-%d", away.HTTPURL(), i), "application/json", strings.NewReader(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("capture after the restart: got %d, want 200", resp.StatusCode)
				}
			}
			stopAway()
			m2, _ := openMainAt(t, addr, dir)
			if m2.HTTPURL() != base {
				t.Fatalf("restarted on %s, want %s", m2.HTTPURL(), base)
			}
			p.WaitConnected(t)
			// And live ones once it is back.
			post("/b/gap/live-after-1")
			post("/b/gap/live-after-2")

			all := binCaptures(t, m2, "gap")
			want := 2 + during + 2
			if seenLive {
				want++
			}
			if len(all) != want {
				t.Fatalf("bin gap: got %d captures, want %d", len(all), want)
			}
			p.Visible(t, captureRow(all[len(all)-1].ID))
			for _, c := range all {
				if n := p.Count(t, captureRow(c.ID)); n != 1 {
					t.Errorf("rows for capture %d (%s): got %d, want exactly 1", c.ID, c.Path, n)
				}
			}
			if n := p.Count(t, `ul.captures li`); n != len(all) {
				t.Errorf("rows: got %d, want %d", n, len(all))
			}
			// The count comes back from the server a moment after the rows.
			if _, err := chromedp.Run(p.Ctx, chromedp.Poll[bool](fmt.Sprintf(`document.querySelector('.bin-count').textContent === '%d'`, len(all)), chromedp.WithPollingTimeout(5*time.Second))); err != nil {
				t.Errorf("capture count: got %q, want %d", p.Text(t, `.bin-count`), len(all))
			}
			states := browsertest.Eval[[]string](t, p, `window.__states`)
			if !slices.Contains(states, "reconnecting (attempt 1)") || states[len(states)-1] != "live" {
				t.Errorf("indicator states: got %q, want reconnecting (attempt 1) ... live", states)
			}
			sockets := p.WebSockets()[socketsBefore:]
			since := fmt.Sprintf("since=%d", last)
			resumed := slices.ContainsFunc(sockets, func(u string) bool { return strings.Contains(u, since) })
			if seenLive && !resumed {
				t.Errorf("websockets after the restart: got %q, want one with %s", sockets, since)
			}
			if seenLive {
				p.Screenshot(t, "bin-after-restart.png")
			}
		})
	}
	if ex := p.Exceptions(); len(ex) > 0 {
		t.Errorf("exceptions in the page: got %q, want none", ex)
	}
}

// TestBrowserDemo: the seeded demo, opened in the browser, shows callbacks
// failing and retrying live: the tasks list has the recovering task
// delivered and the failing one's last attempt climbing while the page is
// open; the failing task's page draws its ladder.
func TestBrowserDemo(t *testing.T) {
	p := browsertest.MustBrowser(t)
	m := MustRun(t, "-time-scale", "1800") // the whole ladder in 48 s
	d := MustDemo(t, m, -1, 0)
	recovers, down := d.Seeded.Tasks[0], d.Seeded.Tasks[1]
	row := func(id string) string { return fmt.Sprintf(`tr[data-task=%q]`, id) }

	p.Open(t, m.HTTPURL()+"/tasks", row(down))
	p.WaitConnected(t)
	p.WaitText(t, row(recovers), "completed", "delivered")
	lastAttempt := func() int {
		var n int
		text := p.WaitText(t, row(down)+` td:nth-child(5)`, "#")
		fmt.Sscanf(text, "#%d", &n)
		return n
	}
	first := lastAttempt()
	deadline := time.Now().Add(10 * time.Second)
	for lastAttempt() <= first {
		if time.Now().After(deadline) {
			t.Fatalf("the failing task's last attempt stayed at #%d for 10 s, want it to climb live", first)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := p.WaitText(t, row(down), "pending", "500"); strings.Contains(got, "delivered") {
		t.Errorf("failing task row: got %q, want it pending with 500s", got)
	}
	p.Screenshot(t, "demo-tasks.png")

	// The bins list: the failing bin's count climbs with each retry.
	binRow := func(name string) string { return fmt.Sprintf(`tr[data-bin=%q]`, name) }
	p.Open(t, m.HTTPURL()+"/bins", binRow(DemoDown))
	p.WaitConnected(t)
	count := func() int {
		n, _ := strconv.Atoi(p.WaitText(t, binRow(DemoDown)+` td.num`))
		return n
	}
	if got := p.WaitText(t, binRow(DemoHook)+` td.num`, "4"); got != "4" {
		t.Errorf("%s count: got %q, want 4 (three samples and a callback)", DemoHook, got)
	}
	before := count()
	deadline = time.Now().Add(10 * time.Second)
	for count() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("%s's count stayed at %d for 10 s, want it to climb live", DemoDown, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Screenshot(t, "demo-bins.png")

	p.Open(t, m.HTTPURL()+"/tasks/"+down, `svg.timeline circle.dot.fail`)
	p.Visible(t, `svg.timeline circle.dot.next`)
	if n := p.Count(t, `svg.timeline circle.dot.ok`); n != 0 {
		t.Errorf("failing task: got %d ok dots, want 0", n)
	}
	p.Screenshot(t, "demo-ladder.png")
	if ex := p.Exceptions(); len(ex) > 0 {
		t.Errorf("exceptions in the page: got %q, want none", ex)
	}
}
