package frontend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/callbin/callbin/frontend/browsertest"
)

// xssPayloads is what a hostile sender puts everywhere a capture shows.
const (
	xssPath   = `/b/hook/<img src=x onerror="window.__pwned='path'">`
	xssHeader = `<script>window.__pwned='header'</script>`
	xssBody   = `<script>window.__pwned='body'</script><img src=x onerror="window.__pwned='body-img'">`
	xssHTML   = `<h1>Invoice</h1><script>parent.__pwned='email-script'</script>` +
		`<img src=x onerror="parent.__pwned='email-img'"><a href="javascript:parent.__pwned='email-link'">pay</a>`
)

func TestBrowserUI(t *testing.T) {
	p := browsertest.MustBrowser(t)
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
		if v := browsertest.Eval[string](t, p, `String(window.__pwned)`); v != "undefined" {
			t.Fatalf("window.__pwned: got %q, want undefined (a payload ran)", v)
		}
	}

	t.Run("bins list", func(t *testing.T) {
		p.Open(t, srv.URL+"/bins", `tr[data-bin="hook"]`)
		if got := p.Text(t, `tr[data-bin="hook"] td.num`); got != "4" {
			t.Errorf("hook's capture count: got %q, want 4", got)
		}
		p.WaitConnected(t)
	})

	t.Run("create and delete a bin", func(t *testing.T) {
		p.Open(t, srv.URL+"/bins", `form.inline-form input[name=name]`)
		p.Do(t,
			chromedp.SetValue(chromedp.CSS(`form.inline-form input[name=name]`), "fresh"),
			chromedp.Click(chromedp.CSS(`form.inline-form button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`.bin-page .bin-url`)),
		)
		if got := browsertest.Eval[string](t, p, `location.pathname`); got != "/bins/fresh" {
			t.Errorf("after create: got %q, want /bins/fresh", got)
		}
		if got := p.Text(t, `.bin-page h1`); got != "bin fresh" {
			t.Errorf("heading: got %q, want bin fresh", got)
		}
		p.Open(t, srv.URL+"/bins", `tr[data-bin="fresh"]`)
		p.Do(t, chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`))
		p.Click(t, `tr[data-bin="fresh"] button.danger`) // the bins table is redrawn every few seconds
		p.Do(t, chromedp.WaitNotPresent(chromedp.CSS(`tr[data-bin="fresh"]`)))
		api.mu.Lock()
		_, still := api.bins["fresh"]
		api.mu.Unlock()
		if still {
			t.Errorf("bin fresh: still on the server after Delete")
		}
	})

	t.Run("capture arrives live", func(t *testing.T) {
		p.Open(t, srv.URL+"/bins/hook", row(mailID))
		p.WaitConnected(t)
		id := api.addCapture(map[string]any{"bin": "hook", "method": "DELETE", "path": "/b/hook/live", "headers": [][]string{}, "body": "", "size": 0, "remote_addr": "127.0.0.1:1"})
		p.Visible(t, row(id))
		if got := p.Text(t, `ul.captures li:first-child .path`); got != "/b/hook/live" {
			t.Errorf("newest row: got %q, want /b/hook/live", got)
		}
		p.WaitText(t, `.bin-count`, "5")
	})

	t.Run("JSON body, headers, query, curl", func(t *testing.T) {
		p.Open(t, capture(jsonID), `pre.body.json`)
		if got := p.TextContent(t, `pre.body.json`); !strings.Contains(got, "\"order\": 12345678901234567890,\n") || !strings.Contains(got, `"sku": "A-1"`) {
			t.Errorf("pretty JSON: got %q, want indented with the big number intact", got)
		}
		for _, sel := range []string{`.bin-meta`, `.capture`, `ul.captures`} {
			if got := p.Text(t, sel); strings.Contains(got, "null") || strings.Contains(got, "undefined") {
				t.Errorf("%s: got %q, want no null or undefined shown", sel, got)
			}
		}
		if got := p.Text(t, `table.query`); !strings.Contains(got, "two words") {
			t.Errorf("query table: got %q, want the decoded 'two words'", got)
		}
		wantCurl := `curl '` + srv.URL + `/b/hook/orders?a=1&b=two+words' -H 'Content-Type: application/json' -H 'User-Agent: sender/1.0' --data-binary '{"order":12345678901234567890,"items":[{"sku":"A-1","qty":2}],"note":"it'\''s"}'`
		if got := p.TextContent(t, `pre.curl-cmd`); got != wantCurl {
			t.Errorf("curl:\ngot  %s\nwant %s", got, wantCurl)
		}
		p.Screenshot(t, "bin-view.png")
	})

	t.Run("script payloads stay text", func(t *testing.T) {
		p.Open(t, capture(xssID), `table.headers`)
		if got := p.Text(t, `.capture h2 .path`); got != xssPath {
			t.Errorf("path: got %q, want it shown as text %q", got, xssPath)
		}
		if got := p.Text(t, `table.headers`); !strings.Contains(got, xssHeader) {
			t.Errorf("headers: got %q, want the payload as text", got)
		}
		if got := p.TextContent(t, `pre.body.raw`); got != xssBody {
			t.Errorf("raw body: got %q, want the payload as text", got)
		}
		if n := p.Count(t, `.capture script, .capture img, .capture [onerror]`); n != 0 {
			t.Errorf("elements made from captured data: got %d, want 0", n)
		}
		pwned(t)
	})

	t.Run("e-mail HTML is sandboxed", func(t *testing.T) {
		p.Open(t, capture(mailID), `iframe.email-html`)
		p.CheckEmailFrame(t)
		if got := p.Text(t, `.capture h2`); !strings.Contains(got, `<img src=x onerror=`) {
			t.Errorf("subject: got %q, want the payload as text", got)
		}
		if n := p.Count(t, `a[href^="javascript"], [href*="javascript:"]`); n != 0 {
			t.Errorf("javascript: links: got %d, want 0", n)
		}
		if got := p.Text(t, `ul.attachments`); !strings.Contains(got, "<svg onload=alert(1)>.pdf") || !strings.Contains(got, "terms.txt") {
			t.Errorf("attachments: got %q, want both names as text", got)
		}
		pwned(t)
		p.Screenshot(t, "capture-email.png")
	})

	t.Run("binary body as hex", func(t *testing.T) {
		p.Open(t, capture(binID), `pre.body.hex`)
		if got, want := p.TextContent(t, `pre.body.hex`), "00000000  00 01 02 03 ff 7f 48 65  6c 6c 6f"; !strings.HasPrefix(got, want) {
			t.Errorf("hex: got %q, want it to start %q", got, want)
		}
	})

	t.Run("scenario error at its line", func(t *testing.T) {
		script := "name: broken\nsteps:\n  - status: 999\n    repeat: 3\n"
		p.Open(t, srv.URL+"/bins/hook", `.bin-count`)
		p.Do(t,
			chromedp.Click(chromedp.CSS(`.tabs button.tab:nth-child(2)`)),
			chromedp.WaitVisible(chromedp.CSS(`textarea.code`)),
			chromedp.SetValue(chromedp.CSS(`textarea.code`), script),
			chromedp.Click(chromedp.CSS(`form.scenario button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`.gutter .ln.err`)),
		)
		line, status := p.Text(t, `.gutter .ln.err`), p.Text(t, `.scenario-status`)
		if line != "3" || !strings.Contains(status, "Line 3") || !strings.Contains(status, "steps[0].status") {
			t.Errorf("error shown: line %q, status %q; want line 3 and the field", line, status)
		}
		sel := browsertest.Eval[[]int](t, p, `(() => { const a = document.querySelector('textarea.code'); return [a.selectionStart, a.selectionEnd]; })()`)
		start := strings.Index(script, "  - status: 999")
		if len(sel) != 2 || sel[0] != start || sel[1] != start+len("  - status: 999") {
			t.Errorf("selection: got %v, want line 3 [%d %d]", sel, start, start+15)
		}
		p.Screenshot(t, "scenario-error.png")
	})

	t.Run("scenario edits survive the bin being read again", func(t *testing.T) {
		const typed = "name: mine\nsteps: [{status: 201}]\n"
		p.Open(t, srv.URL+"/bins/quiet", `.bin-count`)
		p.Do(t,
			chromedp.Click(chromedp.CSS(`.tabs button.tab:nth-child(2)`)),
			chromedp.WaitVisible(chromedp.CSS(`textarea.code`)),
			chromedp.SetValue(chromedp.CSS(`textarea.code`), typed),
		)
		// A change to the bin makes the page read it again: its count
		// comes back as 7, which says the read is done.
		api.mu.Lock()
		api.bins["quiet"]["capture_count"] = 7
		api.mu.Unlock()
		api.hub.Publish(Message{Bin: "quiet", Data: map[string]any{"type": "bin", "action": "updated", "name": "quiet"}})
		if _, err := chromedp.Run(p.Ctx, chromedp.Poll[bool](`document.querySelector('.bin-count').textContent === '7'`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			t.Fatalf("the page did not read the bin again: count %q: %v", p.Text(t, `.bin-count`), err)
		}
		if got := browsertest.Eval[string](t, p, `document.querySelector('textarea.code').value`); got != typed {
			t.Errorf("editor after the bin was read again: got %q, want what was typed, %q", got, typed)
		}
		// Coming back to the tab keeps it too.
		p.Do(t,
			chromedp.Click(chromedp.CSS(`.tabs button.tab:nth-child(1)`)),
			chromedp.Click(chromedp.CSS(`.tabs button.tab:nth-child(2)`)),
			chromedp.WaitVisible(chromedp.CSS(`textarea.code`)),
		)
		if got := browsertest.Eval[string](t, p, `document.querySelector('textarea.code').value`); got != typed {
			t.Errorf("editor after switching tabs: got %q, want %q", got, typed)
		}
	})

	t.Run("attempt timeline", func(t *testing.T) {
		p.Open(t, srv.URL+"/tasks/t-retry", `svg.timeline circle.dot`)
		fails, oks, next := p.Count(t, `svg.timeline circle.dot.fail`), p.Count(t, `svg.timeline circle.dot.ok`), p.Count(t, `svg.timeline circle.dot.next`)
		if fails != 4 || oks != 0 || next != 1 {
			t.Errorf("t-retry dots: got %d failed, %d ok, %d next; want 4, 0, 1", fails, oks, next)
		}
		xs := browsertest.Eval[[]float64](t, p, `[...document.querySelectorAll('svg.timeline circle.dot:not(.next)')].map(c => +c.getAttribute('cx'))`)
		if !slices.IsSorted(xs) || len(xs) != 4 || xs[0] >= xs[3] {
			t.Errorf("dot positions: got %v, want increasing along the axis", xs)
		}
		p.Screenshot(t, "task-timeline.png")

		p.Open(t, srv.URL+"/tasks/t-ok", `svg.timeline circle.dot`)
		if fails, oks := p.Count(t, `svg.timeline circle.dot.fail`), p.Count(t, `svg.timeline circle.dot.ok`); fails != 3 || oks != 1 {
			t.Errorf("t-ok dots: got %d failed, %d ok; want 3, 1", fails, oks)
		}
		p.Open(t, srv.URL+"/tasks", `tr[data-task="t-ok"]`)
		if got := p.Text(t, `tr[data-task="t-ok"]`); !strings.Contains(got, "delivered") {
			t.Errorf("tasks list row: got %q, want it delivered", got)
		}
	})

	t.Run("reconnect fills the gap", func(t *testing.T) {
		p.Open(t, srv.URL+"/bins/hook", `ul.captures li`)
		p.WaitConnected(t)
		// Pages left behind (back/forward cache included) hold no stream.
		waitFor(t, "one subscriber", func() bool { return api.hub.Clients() == 1 })
		last := api.addCapture(map[string]any{"bin": "hook", "method": "POST", "path": "/b/hook/before", "headers": [][]string{}, "body": "x", "size": 1, "remote_addr": "127.0.0.1:1"})
		p.Visible(t, row(last))
		p.Do(t, chromedp.Evaluate[chromedp.Void](`window.__states = []; new MutationObserver(() => window.__states.push(document.getElementById('conn').textContent)).observe(document.getElementById('conn'), {childList: true, characterData: true, subtree: true})`))
		api.dropSubscribers()
		// Committed while the page is disconnected: only resume can bring it.
		gap := api.addCapture(map[string]any{"bin": "hook", "method": "POST", "path": "/b/hook/during-the-gap", "headers": [][]string{}, "body": "y", "size": 1, "remote_addr": "127.0.0.1:1"})
		p.Visible(t, row(gap))
		p.WaitConnected(t)
		states := browsertest.Eval[[]string](t, p, `window.__states`)
		if !slices.Contains(states, "reconnecting (attempt 1)") || states[len(states)-1] != "live" {
			t.Errorf("indicator states: got %q, want reconnecting (attempt 1) ... live", states)
		}
		api.mu.Lock()
		sinces := slices.Clone(api.sinces)
		api.mu.Unlock()
		if !slices.Contains(sinces, last) {
			t.Errorf("resumes: got since %v, want one with since=%d", sinces, last)
		}
		if n := p.Count(t, row(gap)); n != 1 {
			t.Errorf("rows for the gap capture: got %d, want exactly 1", n)
		}
		p.Screenshot(t, "bin-live.png")
	})

	if ex := p.Exceptions(); len(ex) > 0 {
		t.Errorf("exceptions in the page: got %q, want none", ex)
	}
	pwned(t)
}
