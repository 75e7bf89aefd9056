package frontend

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browserEnv makes the browser tests mandatory (CI sets it where it has
// installed Chromium); elsewhere they skip when no browser is found.
const browserEnv = "CALLBIN_BROWSER_TESTS"

// screenshotEnv names a folder for the browser tests' screenshots.
const screenshotEnv = "CALLBIN_SCREENSHOTS"

func findBrowser(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(browserEnv) != "" {
		tb.Fatalf("%s is set but no Chromium was found on PATH", browserEnv)
	}
	tb.Skipf("no Chromium on PATH: skipping the browser tests (set %s to make them mandatory)", browserEnv)
	return ""
}

// MustBrowser starts headless Chromium and returns a tab's context, and the
// exceptions thrown in the page so far.
func MustBrowser(tb testing.TB) (context.Context, func() []string) {
	tb.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(findBrowser(tb)),
		chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 860),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	tb.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
	})
	var mu sync.Mutex
	var exceptions []string
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			mu.Lock()
			exceptions = append(exceptions, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1))
			mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if testing.Verbose() {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value))
				}
				tb.Logf("console.%s: %s", ev.Type, strings.Join(parts, " "))
			}
		}
	})
	if err != nil {
		tb.Fatalf("start browser: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(exceptions)
	}
}

func screenshot(tb testing.TB, ctx context.Context, name string) {
	tb.Helper()
	dir := os.Getenv(screenshotEnv)
	if dir == "" {
		return
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// xssPayloads is what a hostile sender puts everywhere a capture shows.
const (
	xssPath   = `/b/hook/<img src=x onerror="window.__pwned='path'">`
	xssHeader = `<script>window.__pwned='header'</script>`
	xssBody   = `<script>window.__pwned='body'</script><img src=x onerror="window.__pwned='body-img'">`
	xssHTML   = `<h1>Invoice</h1><script>parent.__pwned='email-script'</script>` +
		`<img src=x onerror="parent.__pwned='email-img'"><a href="javascript:parent.__pwned='email-link'">pay</a>`
)

// Page helpers: each fails the test on error.

func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, ctx context.Context, url, waitFor string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(waitFor)))
}

func visible(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// text is an element's rendered text; textContent its raw text.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func textContent(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text content of %s: %v", sel, err)
	}
	return s
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	return eval[int](t, ctx, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

func waitConnected(t *testing.T, ctx context.Context) {
	t.Helper()
	visible(t, ctx, `#conn[data-state="connected"]`)
}

func TestBrowserUI(t *testing.T) {
	ctx, exceptions := MustBrowser(t)
	api, handler := newFakeAPI(t)
	srv := MustServe(t, handler)
	t.Cleanup(func() { _ = api.hub.Close(context.Background()) })

	api.addBin("quiet")
	jsonID := api.addCapture(map[string]any{
		"bin": "hook", "method": "POST", "path": "/b/hook/orders", "query": "a=1&b=two+words",
		"headers": [][]string{{"Content-Type", "application/json"}, {"User-Agent", "sender/1.0"}},
		"body":    `{"order":12345678901234567890,"items":[{"sku":"A-1","qty":2}],"note":"it's"}`, "size": 77,
		"truncated": false, "remote_addr": "127.0.0.1:50412",
	})
	xssID := api.addCapture(map[string]any{
		"bin": "hook", "method": "PUT", "path": xssPath, "query": "next=javascript:alert(1)&x=%3Cscript%3Ealert(2)%3C%2Fscript%3E",
		"headers": [][]string{{"X-Evil", xssHeader}, {"Content-Type", "text/html"}}, "body": xssBody, "size": len(xssBody),
		"truncated": false, "remote_addr": "127.0.0.1:50413", "reply": map[string]any{"status": 500},
	})
	binID := api.addCapture(map[string]any{
		"bin": "hook", "method": "POST", "path": "/b/hook/blob", "headers": [][]string{{"Content-Type", "application/octet-stream"}},
		"body_base64": "AAECA/9/SGVsbG8=", "body_encoding": "base64", "size": 10, "truncated": false, "remote_addr": "127.0.0.1:50414",
	})
	mailID := api.addCapture(map[string]any{
		"bin": "hook", "kind": "email", "method": "", "path": "hook@callbin.local", "headers": [][]string{{"Subject", "Invoice"}},
		"body": "Subject: Invoice\r\n\r\n...", "size": 24, "truncated": false, "remote_addr": "127.0.0.1:50415",
		"reply": map[string]any{"smtp_code": 250},
		"email": map[string]any{
			"from": `"<script>x</script>" <evil@example.com>`, "to": []string{"hook@callbin.local"},
			"subject": `<img src=x onerror="window.__pwned='subject'">`, "date": "Mon, 2 Jan 2026 15:04:05 +0000",
			"text": "Pay <b>now</b>", "html": xssHTML,
			"attachments": []map[string]any{
				{"name": `<svg onload=alert(1)>.pdf`, "type": "application/pdf", "size": 1234, "url": "javascript:window.__pwned='attachment'"},
				{"name": "terms.txt", "type": "text/plain", "size": 3, "url": "/api/v1/bins/hook/captures/4/attachments/1"},
			},
		},
	})
	api.addTask("t-retry", "http://127.0.0.1:9/hook", []int{500, 500, 0, 503}, true)
	api.addTask("t-ok", "http://127.0.0.1:9/hook", []int{500, 502, 500, 200}, false)

	capture := func(id int64) string { return fmt.Sprintf("%s/bins/hook/captures/%d", srv.URL, id) }
	row := func(id int64) string { return fmt.Sprintf(`ul.captures li[data-id="%d"]`, id) }
	pwned := func(t *testing.T) {
		t.Helper()
		if v := eval[string](t, ctx, `String(window.__pwned)`); v != "undefined" {
			t.Fatalf("window.__pwned: got %q, want undefined (a payload ran)", v)
		}
	}

	t.Run("bins list", func(t *testing.T) {
		open(t, ctx, srv.URL+"/bins", `tr[data-bin="hook"]`)
		if got := text(t, ctx, `tr[data-bin="hook"] td.num`); got != "4" {
			t.Errorf("hook's capture count: got %q, want 4", got)
		}
		waitConnected(t, ctx)
	})

	t.Run("create and delete a bin", func(t *testing.T) {
		open(t, ctx, srv.URL+"/bins", `form.inline-form input[name=name]`)
		do(t, ctx,
			chromedp.SetValue(chromedp.CSS(`form.inline-form input[name=name]`), "fresh"),
			chromedp.Click(chromedp.CSS(`form.inline-form button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`.bin-page .bin-url`)),
		)
		if got := eval[string](t, ctx, `location.pathname`); got != "/bins/fresh" {
			t.Errorf("after create: got %q, want /bins/fresh", got)
		}
		if got := text(t, ctx, `.bin-page h1`); got != "bin fresh" {
			t.Errorf("heading: got %q, want bin fresh", got)
		}
		open(t, ctx, srv.URL+"/bins", `tr[data-bin="fresh"]`)
		do(t, ctx,
			chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
			chromedp.Click(chromedp.CSS(`tr[data-bin="fresh"] button.danger`)),
			chromedp.WaitNotPresent(chromedp.CSS(`tr[data-bin="fresh"]`)),
		)
		api.mu.Lock()
		_, still := api.bins["fresh"]
		api.mu.Unlock()
		if still {
			t.Errorf("bin fresh: still on the server after Delete")
		}
	})

	t.Run("capture arrives live", func(t *testing.T) {
		open(t, ctx, srv.URL+"/bins/hook", row(mailID))
		waitConnected(t, ctx)
		id := api.addCapture(map[string]any{"bin": "hook", "method": "DELETE", "path": "/b/hook/live", "headers": [][]string{}, "body": "", "size": 0, "remote_addr": "127.0.0.1:1"})
		visible(t, ctx, row(id))
		if got := text(t, ctx, `ul.captures li:first-child .path`); got != "/b/hook/live" {
			t.Errorf("newest row: got %q, want /b/hook/live", got)
		}
		if got := text(t, ctx, `.bin-count`); got != "5" {
			t.Errorf("count: got %q, want 5", got)
		}
	})

	t.Run("JSON body, headers, query, curl", func(t *testing.T) {
		open(t, ctx, capture(jsonID), `pre.body.json`)
		if got := textContent(t, ctx, `pre.body.json`); !strings.Contains(got, "\"order\": 12345678901234567890,\n") || !strings.Contains(got, `"sku": "A-1"`) {
			t.Errorf("pretty JSON: got %q, want indented with the big number intact", got)
		}
		for _, sel := range []string{`.bin-meta`, `.capture`, `ul.captures`} {
			if got := text(t, ctx, sel); strings.Contains(got, "null") || strings.Contains(got, "undefined") {
				t.Errorf("%s: got %q, want no null or undefined shown", sel, got)
			}
		}
		if got := text(t, ctx, `table.query`); !strings.Contains(got, "two words") {
			t.Errorf("query table: got %q, want the decoded 'two words'", got)
		}
		wantCurl := `curl '` + srv.URL + `/b/hook/orders?a=1&b=two+words' -H 'Content-Type: application/json' -H 'User-Agent: sender/1.0' --data-binary '{"order":12345678901234567890,"items":[{"sku":"A-1","qty":2}],"note":"it'\''s"}'`
		if got := textContent(t, ctx, `pre.curl-cmd`); got != wantCurl {
			t.Errorf("curl:\ngot  %s\nwant %s", got, wantCurl)
		}
		screenshot(t, ctx, "bin-view.png")
	})

	t.Run("script payloads stay text", func(t *testing.T) {
		open(t, ctx, capture(xssID), `table.headers`)
		if got := text(t, ctx, `.capture h2 .path`); got != xssPath {
			t.Errorf("path: got %q, want it shown as text %q", got, xssPath)
		}
		if got := text(t, ctx, `table.headers`); !strings.Contains(got, xssHeader) {
			t.Errorf("headers: got %q, want the payload as text", got)
		}
		if got := textContent(t, ctx, `pre.body.raw`); got != xssBody {
			t.Errorf("raw body: got %q, want the payload as text", got)
		}
		if n := count(t, ctx, `.capture script, .capture img, .capture [onerror]`); n != 0 {
			t.Errorf("elements made from captured data: got %d, want 0", n)
		}
		pwned(t)
	})

	t.Run("e-mail HTML is sandboxed", func(t *testing.T) {
		open(t, ctx, capture(mailID), `iframe.email-html`)
		do(t, ctx, chromedp.Sleep(300*time.Millisecond)) // let the frame load and any script try to run
		type frameInfo struct {
			Sandbox string `json:"sandbox"`
			Opaque  bool   `json:"opaque"`
			Srcdoc  bool   `json:"srcdoc"`
		}
		frame := eval[frameInfo](t, ctx, `(() => { const f = document.querySelector('iframe.email-html');
			return {sandbox: f.getAttribute('sandbox'), opaque: f.contentDocument === null, srcdoc: f.hasAttribute('srcdoc')}; })()`)
		if frame.Sandbox != "" || !frame.Opaque || !frame.Srcdoc {
			t.Errorf("iframe: got %+v, want sandbox=\"\", an opaque origin and srcdoc", frame)
		}
		if got := text(t, ctx, `.capture h2`); !strings.Contains(got, `<img src=x onerror=`) {
			t.Errorf("subject: got %q, want the payload as text", got)
		}
		if n := count(t, ctx, `a[href^="javascript"], [href*="javascript:"]`); n != 0 {
			t.Errorf("javascript: links: got %d, want 0", n)
		}
		if got := text(t, ctx, `ul.attachments`); !strings.Contains(got, "<svg onload=alert(1)>.pdf") || !strings.Contains(got, "terms.txt") {
			t.Errorf("attachments: got %q, want both names as text", got)
		}
		pwned(t)
		screenshot(t, ctx, "capture-email.png")
	})

	t.Run("binary body as hex", func(t *testing.T) {
		open(t, ctx, capture(binID), `pre.body.hex`)
		if got, want := textContent(t, ctx, `pre.body.hex`), "00000000  00 01 02 03 ff 7f 48 65  6c 6c 6f"; !strings.HasPrefix(got, want) {
			t.Errorf("hex: got %q, want it to start %q", got, want)
		}
	})

	t.Run("scenario error at its line", func(t *testing.T) {
		script := "name: broken\nsteps:\n  - status: 999\n    repeat: 3\n"
		open(t, ctx, srv.URL+"/bins/hook", `.bin-count`)
		do(t, ctx,
			chromedp.Click(chromedp.CSS(`.tabs button.tab:nth-child(2)`)),
			chromedp.WaitVisible(chromedp.CSS(`textarea.code`)),
			chromedp.SetValue(chromedp.CSS(`textarea.code`), script),
			chromedp.Click(chromedp.CSS(`form.scenario button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`.gutter .ln.err`)),
		)
		line, status := text(t, ctx, `.gutter .ln.err`), text(t, ctx, `.scenario-status`)
		if line != "3" || !strings.Contains(status, "Line 3") || !strings.Contains(status, "steps[0].status") {
			t.Errorf("error shown: line %q, status %q; want line 3 and the field", line, status)
		}
		sel := eval[[]int](t, ctx, `(() => { const a = document.querySelector('textarea.code'); return [a.selectionStart, a.selectionEnd]; })()`)
		start := strings.Index(script, "  - status: 999")
		if len(sel) != 2 || sel[0] != start || sel[1] != start+len("  - status: 999") {
			t.Errorf("selection: got %v, want line 3 [%d %d]", sel, start, start+15)
		}
		screenshot(t, ctx, "scenario-error.png")
	})

	t.Run("attempt timeline", func(t *testing.T) {
		open(t, ctx, srv.URL+"/tasks/t-retry", `svg.timeline circle.dot`)
		fails, oks, next := count(t, ctx, `svg.timeline circle.dot.fail`), count(t, ctx, `svg.timeline circle.dot.ok`), count(t, ctx, `svg.timeline circle.dot.next`)
		if fails != 4 || oks != 0 || next != 1 {
			t.Errorf("t-retry dots: got %d failed, %d ok, %d next; want 4, 0, 1", fails, oks, next)
		}
		xs := eval[[]float64](t, ctx, `[...document.querySelectorAll('svg.timeline circle.dot:not(.next)')].map(c => +c.getAttribute('cx'))`)
		if !slices.IsSorted(xs) || len(xs) != 4 || xs[0] >= xs[3] {
			t.Errorf("dot positions: got %v, want increasing along the axis", xs)
		}
		screenshot(t, ctx, "task-timeline.png")

		open(t, ctx, srv.URL+"/tasks/t-ok", `svg.timeline circle.dot`)
		if fails, oks := count(t, ctx, `svg.timeline circle.dot.fail`), count(t, ctx, `svg.timeline circle.dot.ok`); fails != 3 || oks != 1 {
			t.Errorf("t-ok dots: got %d failed, %d ok; want 3, 1", fails, oks)
		}
		open(t, ctx, srv.URL+"/tasks", `tr[data-task="t-ok"]`)
		if got := text(t, ctx, `tr[data-task="t-ok"]`); !strings.Contains(got, "delivered") {
			t.Errorf("tasks list row: got %q, want it delivered", got)
		}
	})

	t.Run("reconnect fills the gap", func(t *testing.T) {
		open(t, ctx, srv.URL+"/bins/hook", `ul.captures li`)
		waitConnected(t, ctx)
		// Pages left behind (back/forward cache included) hold no stream.
		waitFor(t, "one subscriber", func() bool { return api.hub.Clients() == 1 })
		last := api.addCapture(map[string]any{"bin": "hook", "method": "POST", "path": "/b/hook/before", "headers": [][]string{}, "body": "x", "size": 1, "remote_addr": "127.0.0.1:1"})
		visible(t, ctx, row(last))
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.__states = []; new MutationObserver(() => window.__states.push(document.getElementById('conn').textContent)).observe(document.getElementById('conn'), {childList: true, characterData: true, subtree: true})`))
		api.dropSubscribers()
		// Committed while the page is disconnected: only resume can bring it.
		gap := api.addCapture(map[string]any{"bin": "hook", "method": "POST", "path": "/b/hook/during-the-gap", "headers": [][]string{}, "body": "y", "size": 1, "remote_addr": "127.0.0.1:1"})
		visible(t, ctx, row(gap))
		waitConnected(t, ctx)
		states := eval[[]string](t, ctx, `window.__states`)
		if !slices.Contains(states, "reconnecting (attempt 1)") || states[len(states)-1] != "live" {
			t.Errorf("indicator states: got %q, want reconnecting (attempt 1) ... live", states)
		}
		api.mu.Lock()
		sinces := slices.Clone(api.sinces)
		api.mu.Unlock()
		if !slices.Contains(sinces, last) {
			t.Errorf("resumes: got since %v, want one with since=%d", sinces, last)
		}
		if n := count(t, ctx, row(gap)); n != 1 {
			t.Errorf("rows for the gap capture: got %d, want exactly 1", n)
		}
		screenshot(t, ctx, "bin-live.png")
	})

	if ex := exceptions(); len(ex) > 0 {
		t.Errorf("exceptions in the page: got %q, want none", ex)
	}
	pwned(t)
}
