package frontend

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// ContentSecurityPolicy is sent with every UI response. Scripts and styles
// come only from the UI's own files (no inline script or style, no eval);
// Trusted Types are enforced, with the single policy "email" that the UI
// uses for the sandboxed e-mail iframe's srcdoc; the page cannot be framed.
// An e-mail's HTML, shown in <iframe sandbox="" srcdoc>, inherits this
// policy: its scripts do not run and its remote images do not load.
const ContentSecurityPolicy = "default-src 'none'; " +
	"script-src 'self'; " +
	"style-src 'self'; " +
	"img-src 'self' data:; " +
	"font-src 'self'; " +
	"connect-src 'self'; " +
	"frame-src 'self'; " +
	"child-src 'self'; " +
	"base-uri 'none'; " +
	"form-action 'self'; " +
	"frame-ancestors 'none'; " +
	"object-src 'none'; " +
	"require-trusted-types-for 'script'; " +
	"trusted-types email"

//go:embed ui
var uiFiles embed.FS

var errNotFound = errors.New("not found")

// uiFile is one embedded file, ready to serve.
type uiFile struct {
	name  string
	body  []byte
	ctype string
	etag  string
}

// uiHandler serves the embedded UI.
type uiHandler struct {
	index  *uiFile
	assets map[string]*uiFile // by URL path, "/assets/app.js"
}

// contentTypes is every extension the UI ships; a file of another kind in
// ui/ fails UI().
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// UI returns the handler of the browser UI. Mount it as the router's
// catch-all, after the API routes. It serves GET and HEAD of:
//   - / and the deep links /bins, /bins/{bin}, /bins/{bin}/captures/{id},
//     /tasks and /tasks/{task_id}: index.html, which routes in the browser;
//   - /assets/...: the ES modules, styles and icons;
//
// and answers 404 for any other path. Every response carries
// ContentSecurityPolicy, X-Content-Type-Options: nosniff,
// X-Frame-Options: DENY and Referrer-Policy: no-referrer. The files hold no
// captured data, so they need no --auth-token; the page reads a token from
// ?token= (kept in localStorage) and sends it with every API call.
func UI() http.Handler {
	h, err := newUIHandler(uiFiles)
	if err != nil {
		// The files are embedded at build time; TestUIFiles checks them.
		panic(fmt.Sprintf("frontend: embedded ui: %v", err))
	}
	return h
}

func newUIHandler(fsys fs.FS) (*uiHandler, error) {
	h := &uiHandler{assets: make(map[string]*uiFile)}
	err := fs.WalkDir(fsys, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for %q", p, path.Ext(p))
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		sum := sha256.Sum256(body)
		f := &uiFile{name: p, body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		rel := strings.TrimPrefix(p, "ui")
		switch {
		case rel == "/index.html":
			h.index = f
		case strings.HasPrefix(rel, "/assets/"):
			h.assets[rel] = f
		default:
			return fmt.Errorf("%s: outside ui/assets/", p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h.index == nil {
		return nil, errors.New("ui/index.html is missing")
	}
	return h, nil
}

func (h *uiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		status, code := errorStatus(errMethod)
		writeJSONError(w, status, code, fmt.Errorf("%w: %s, want GET or HEAD", errMethod, r.Method))
		return
	}
	var f *uiFile
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/assets/"):
		f = h.assets[p]
	case isPageRoute(p):
		f = h.index
	}
	if f == nil {
		status, code := errorStatus(errNotFound)
		writeJSONError(w, status, code, fmt.Errorf("%w: %s", errNotFound, r.URL.Path))
		return
	}
	hdr.Set("Content-Type", f.ctype)
	hdr.Set("ETag", f.etag)
	hdr.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}

// isPageRoute reports whether p is a path the browser router shows: / and
// the deep links. A trailing slash is allowed.
func isPageRoute(p string) bool {
	if p == "/" {
		return true
	}
	p = strings.TrimSuffix(p, "/")
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for _, s := range segs {
		if s == "" {
			return false
		}
	}
	switch segs[0] {
	case "bins":
		// /bins, /bins/{bin}, /bins/{bin}/captures/{id}
		return len(segs) <= 2 || (len(segs) == 4 && segs[2] == "captures")
	case "tasks":
		return len(segs) <= 2
	}
	return false
}
