package frontend

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func TestUIRoutes(t *testing.T) {
	srv := MustServe(t, UI())
	tests := []struct {
		path   string
		status int
		ctype  string
		body   string // a substring of the body
	}{
		{"/", 200, "text/html; charset=utf-8", `<script type="module" src="/assets/app.js"></script>`},
		{"/bins", 200, "text/html; charset=utf-8", `<main id="main">`},
		{"/bins/", 200, "text/html; charset=utf-8", `<main id="main">`},
		{"/bins/hook", 200, "text/html; charset=utf-8", `<main id="main">`},
		{"/bins/hook%20two", 200, "text/html; charset=utf-8", `<main id="main">`},
		{"/bins/hook/captures/42", 200, "text/html; charset=utf-8", `<main id="main">`},
		{"/tasks", 200, "text/html; charset=utf-8", `<main id="main">`},
		{"/tasks/6123abc", 200, "text/html; charset=utf-8", `<main id="main">`},
		{"/assets/app.js", 200, "text/javascript; charset=utf-8", "import"},
		{"/assets/format.js", 200, "text/javascript; charset=utf-8", "export function shellQuote"},
		{"/assets/style.css", 200, "text/css; charset=utf-8", ":root"},
		{"/assets/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"/assets/", 404, "application/json; charset=utf-8", `"not_found"`},
		{"/assets/nope.js", 404, "application/json; charset=utf-8", `"not_found"`},
		{"/assets/../index.html", 404, "application/json; charset=utf-8", `"not_found"`},
		{"/index.html", 404, "application/json; charset=utf-8", `"not_found"`},
		{"/nope", 404, "application/json; charset=utf-8", `"not_found"`},
		{"/bins/a/b", 404, "application/json; charset=utf-8", `"not_found"`},
		{"/bins//captures/1", 404, "application/json; charset=utf-8", `"not_found"`},
		{"/bins/a/captures/1/raw", 404, "application/json; charset=utf-8", `"not_found"`},
		{"/tasks/a/b", 404, "application/json; charset=utf-8", `"not_found"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			// A raw request line, so that paths like /assets/../x reach the
			// handler unchanged.
			req, err := http.NewRequest("GET", srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = tt.path
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status: got %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("content type: got %q, want %q", got, tt.ctype)
			}
			if !strings.Contains(string(body), tt.body) {
				t.Errorf("body: got %.200q, want it to contain %q", body, tt.body)
			}
			checkSecurityHeaders(t, resp.Header)
		})
	}
}

func checkSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: got %q, want %q", k, got, v)
		}
	}
}

// The policy itself: what must be in it, and what must never be.
func TestContentSecurityPolicy(t *testing.T) {
	directives := map[string]string{}
	for _, d := range strings.Split(ContentSecurityPolicy, ";") {
		f := strings.Fields(d)
		if len(f) == 0 {
			continue
		}
		directives[f[0]] = strings.Join(f[1:], " ")
	}
	want := map[string]string{
		"default-src":               "'none'",
		"script-src":                "'self'",
		"style-src":                 "'self'",
		"connect-src":               "'self'",
		"object-src":                "'none'",
		"base-uri":                  "'none'",
		"frame-ancestors":           "'none'",
		"require-trusted-types-for": "'script'",
		"trusted-types":             "email",
	}
	for k, v := range want {
		if got := directives[k]; got != v {
			t.Errorf("%s: got %q, want %q", k, got, v)
		}
	}
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "data: 'self'", "blob:"} {
		if d := directives["script-src"]; strings.Contains(d, bad) {
			t.Errorf("script-src %q: got %q in it, want it absent", d, bad)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("policy: got an unsafe-* source in %q, want none", ContentSecurityPolicy)
	}
}

func TestUIMethodsAndCaching(t *testing.T) {
	srv := MustServe(t, UI())

	resp, err := http.Post(srv.URL+"/bins/a", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: got %d Allow %q, want 405 Allow %q", resp.StatusCode, resp.Header.Get("Allow"), "GET, HEAD")
	}

	resp, err = http.Head(srv.URL + "/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength <= 0 {
		t.Errorf("HEAD: got %d, %d body bytes, length %d; want 200, 0 bytes, the file's length", resp.StatusCode, len(body), resp.ContentLength)
	}

	resp, err = http.Get(srv.URL + "/assets/style.css")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("caching headers: got ETag %q, Cache-Control %q; want an ETag and no-cache", etag, resp.Header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest("GET", srv.URL+"/assets/style.css", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: got %d, want 304", resp.StatusCode)
	}
}

func TestNewUIHandlerRefusesBadTrees(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"no index", fstest.MapFS{"ui/assets/app.js": {Data: []byte("x")}}, "index.html is missing"},
		{"unknown type", fstest.MapFS{"ui/index.html": {Data: []byte("x")}, "ui/assets/a.exe": {Data: []byte("x")}}, "no content type"},
		{"stray file", fstest.MapFS{"ui/index.html": {Data: []byte("x")}, "ui/other.js": {Data: []byte("x")}}, "outside ui/assets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newUIHandler(tt.fsys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
}

var (
	importRe      = regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'`)
	scriptTagRe   = regexp.MustCompile(`(?is)<script\b[^>]*>`)
	inlineEventRe = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
)

// Static checks of the shipped files: every module import resolves to a
// shipped file, index.html has no inline script or style, and no script
// uses an API that parses HTML from a string (captured data must only ever
// become text).
func TestUIFiles(t *testing.T) {
	files := map[string]string{}
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(uiFiles, p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("embedded files: got %d, want the whole UI", len(files))
	}

	index := files["ui/index.html"]
	for _, tag := range scriptTagRe.FindAllString(index, -1) {
		if !strings.Contains(tag, `src="/assets/`) {
			t.Errorf("index.html: got %s, want every script loaded from /assets/", tag)
		}
	}
	if strings.Contains(index, "<style") || strings.Contains(index, " style=") || inlineEventRe.MatchString(index) {
		t.Errorf("index.html: got inline style or event handler, want none (the CSP refuses them)")
	}

	forbidden := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "createContextualFragment", "DOMParser", "setAttribute('style'", `setAttribute("style"`}
	modules := 0
	for p, src := range files {
		if path.Ext(p) != ".js" {
			continue
		}
		modules++
		for _, f := range forbidden {
			// dom.js names the attributes it refuses.
			if strings.Contains(src, f) && !(p == "ui/assets/dom.js" && (f == "innerHTML" || f == "outerHTML")) {
				t.Errorf("%s: got %q, want no HTML-parsing or eval API", p, f)
			}
		}
		for _, m := range importRe.FindAllStringSubmatch(src, -1) {
			target := path.Join(path.Dir(p), m[1])
			if !strings.HasPrefix(m[1], "./") {
				t.Errorf("%s: import %q: want a relative ./ import of a shipped module", p, m[1])
			} else if _, ok := files[target]; !ok {
				t.Errorf("%s: import %q: got no file %s, want it shipped", p, m[1], target)
			}
		}
	}
	if modules < 8 {
		t.Errorf("modules: got %d, want the app's 8 or more", modules)
	}
	// srcdoc is set in exactly one place: the sandboxed e-mail frame.
	for p, src := range files {
		n := strings.Count(src, ".srcdoc")
		if p == "ui/assets/dom.js" && n != 1 || p != "ui/assets/dom.js" && n != 0 {
			t.Errorf("%s: got %d srcdoc assignments, want it only in dom.js's emailFrame", p, n)
		}
	}
	if dom := files["ui/assets/dom.js"]; !strings.Contains(dom, "frame.setAttribute('sandbox', '')") {
		t.Errorf("dom.js: want the e-mail iframe created with sandbox=\"\"")
	}
}

// The pure helpers (shell quoting, curl, hex, JSON, timeline) are tested
// under Node when it is installed.
func TestUIHelpersUnderNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the JavaScript helper tests (testdata/format.test.mjs)")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("sh is not installed")
	}
	cmd := exec.Command(node, "--test", "testdata/format.test.mjs")
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") {
		t.Fatalf("node --test: got no '# fail 0' in its report:\n%s", out)
	}
	t.Logf("%s", out)
}
