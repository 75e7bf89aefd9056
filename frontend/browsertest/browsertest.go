// Package browsertest drives headless Chromium through chromedp for
// callbin's browser tests: it finds the browser, opens a tab, records the
// exceptions the page throws and the websockets it opens, saves screenshots,
// and wraps the page queries a test needs, each failing the test on error.
//
// The tests that use it skip with a message where no Chromium is installed,
// unless CALLBIN_BROWSER_TESTS is set (CI sets it where it has installed
// Chromium): then a missing browser fails them.
package browsertest

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

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Env makes the browser tests mandatory when set.
const Env = "CALLBIN_BROWSER_TESTS"

// ScreenshotEnv names a folder where Screenshot saves PNG files; unset, it
// saves nothing.
const ScreenshotEnv = "CALLBIN_SCREENSHOTS"

// Timeout bounds everything one browser does in a test.
const Timeout = 90 * time.Second

// FindBrowser returns the path of Chromium (or Chrome). Where none is on
// PATH it skips the test, or fails it when Env is set.
func FindBrowser(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(Env) != "" {
		tb.Fatalf("%s is set but no Chromium was found on PATH", Env)
	}
	tb.Skipf("no Chromium on PATH: skipping the browser tests (set %s to make them mandatory)", Env)
	return ""
}

// Page is one tab of a headless browser.
type Page struct {
	// Ctx is the tab's chromedp context, for actions the helpers do not
	// cover.
	Ctx context.Context

	mu         sync.Mutex
	exceptions []string
	sockets    []string
}

// MustBrowser starts headless Chromium with one tab, and stops it at the
// end of the test.
func MustBrowser(tb testing.TB) *Page {
	tb.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(FindBrowser(tb)),
		chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 860),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, Timeout)
	tb.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
	})
	p := &Page{Ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			p.mu.Lock()
			p.exceptions = append(p.exceptions, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1))
			p.mu.Unlock()
		case *network.EventWebSocketCreated:
			p.mu.Lock()
			p.sockets = append(p.sockets, ev.URL)
			p.mu.Unlock()
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
	return p
}

// Exceptions returns the exceptions thrown in the page so far.
func (p *Page) Exceptions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.exceptions)
}

// WebSockets returns the URL of every websocket the page has opened so far,
// in order.
func (p *Page) WebSockets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sockets)
}

// Do runs actions in the tab.
func (p *Page) Do(tb testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	if err := chromedp.Do(p.Ctx, actions...); err != nil {
		tb.Fatal(err)
	}
}

// Open navigates to url and waits until the element sel is visible.
func (p *Page) Open(tb testing.TB, url, sel string) {
	tb.Helper()
	p.Do(tb, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Visible waits until the element sel is visible.
func (p *Page) Visible(tb testing.TB, sel string) {
	tb.Helper()
	p.Do(tb, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Text is the rendered text of the element sel. It is read in the page in
// one step, so an element that the page draws again meanwhile cannot turn
// into a stale node.
func (p *Page) Text(tb testing.TB, sel string) string {
	tb.Helper()
	return p.read(tb, sel, "innerText")
}

// TextContent is the raw text of the element sel (whitespace kept).
func (p *Page) TextContent(tb testing.TB, sel string) string {
	tb.Helper()
	return p.read(tb, sel, "textContent")
}

// read returns the property prop of the first element matching sel, and
// fails the test when there is none.
func (p *Page) read(tb testing.TB, sel, prop string) string {
	tb.Helper()
	type result struct {
		Found bool   `json:"found"`
		Text  string `json:"text"`
	}
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? {found: true, text: e.%s} : {found: false, text: ""}; })()`, sel, prop)
	out, err := chromedp.Run(p.Ctx, chromedp.Evaluate[result](js))
	if err != nil {
		tb.Fatalf("%s of %s: %v", prop, sel, err)
	}
	if !out.Found {
		tb.Fatalf("%s of %s: no such element", prop, sel)
	}
	return out.Text
}

// WaitText waits until the rendered text of the element sel contains every
// one of want, and returns it; after 5 s it fails the test with the last
// text seen. Use it where the page may draw the element again.
func (p *Page) WaitText(tb testing.TB, sel string, want ...string) string {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := chromedp.Run(p.Ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : ''; })()`, sel)))
		if err != nil {
			tb.Fatalf("text of %s: %v", sel, err)
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(got, w)
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("text of %s: got %q, want it to contain %q", sel, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Count is the number of elements matching sel now.
func (p *Page) Count(tb testing.TB, sel string) int {
	tb.Helper()
	return Eval[int](tb, p, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// WaitConnected waits until the page's connection indicator shows the live
// stream connected.
func (p *Page) WaitConnected(tb testing.TB) {
	tb.Helper()
	p.Visible(tb, `#conn[data-state="connected"]`)
}

// Screenshot saves the whole page as name (a .png file) in the folder named
// by ScreenshotEnv, when it is set.
func (p *Page) Screenshot(tb testing.TB, name string) {
	tb.Helper()
	dir := os.Getenv(ScreenshotEnv)
	if dir == "" {
		return
	}
	buf, err := chromedp.Run(p.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// Eval evaluates js in the page and returns its value.
func Eval[T any](tb testing.TB, p *Page, js string) T {
	tb.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tb.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// CheckEmailFrame checks the open capture page's e-mail HTML frame: an
// empty sandbox (no scripts, an opaque origin) with the HTML in srcdoc. It
// waits a moment first, so that any script in the frame has had its chance.
func (p *Page) CheckEmailFrame(tb testing.TB) {
	tb.Helper()
	p.Do(tb, chromedp.Sleep(300*time.Millisecond))
	type frameInfo struct {
		Sandbox string `json:"sandbox"`
		Opaque  bool   `json:"opaque"`
		Srcdoc  bool   `json:"srcdoc"`
	}
	frame := Eval[frameInfo](tb, p, `(() => { const f = document.querySelector('iframe.email-html');
		return {sandbox: f.getAttribute('sandbox'), opaque: f.contentDocument === null, srcdoc: f.hasAttribute('srcdoc')}; })()`)
	if frame.Sandbox != "" || !frame.Opaque || !frame.Srcdoc {
		tb.Errorf("iframe: got %+v, want sandbox=\"\", an opaque origin and srcdoc", frame)
	}
}

// Click waits for the element sel and clicks it, finding and clicking it in
// the page in one step: lists that the page draws again (bins, captures)
// cannot hand the click a stale node.
func (p *Page) Click(tb testing.TB, sel string) {
	tb.Helper()
	p.Visible(tb, sel)
	if !Eval[bool](tb, p, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, sel)) {
		tb.Fatalf("click %s: no such element", sel)
	}
}
