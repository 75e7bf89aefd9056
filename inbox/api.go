package inbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
)

// TimeFormat is how API times are written: RFC 3339 with nanoseconds.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

type binJSON struct {
	Name          string          `json:"name"`
	URL           string          `json:"url"`
	Email         string          `json:"email"`
	CreatedAt     string          `json:"created_at"`
	CaptureCount  int64           `json:"capture_count"`
	LastCaptureAt *string         `json:"last_capture_at"`
	Scenario      json.RawMessage `json:"scenario"`
}

// baseURL is the scheme and host the client used to reach us.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (h *Handler) binJSON(r *http.Request, b *Bin) binJSON {
	j := binJSON{
		Name:         b.Name,
		URL:          baseURL(r) + "/b/" + b.Name,
		Email:        b.Name + "@" + h.EmailDomain,
		CreatedAt:    b.CreatedAt.Format(TimeFormat),
		CaptureCount: b.CaptureCount,
		Scenario:     json.RawMessage("null"),
	}
	if !b.LastCaptureAt.IsZero() {
		s := b.LastCaptureAt.Format(TimeFormat)
		j.LastCaptureAt = &s
	}
	if b.Scenario != nil {
		j.Scenario = b.Scenario
	}
	return j
}

type captureJSON struct {
	ID           int64    `json:"id"`
	Bin          string   `json:"bin"`
	Kind         string   `json:"kind"`
	Method       string   `json:"method"`
	Path         string   `json:"path"`
	Query        string   `json:"query"`
	Proto        string   `json:"proto"`
	Headers      []Header `json:"headers"`
	Body         *string  `json:"body,omitempty"`
	BodyBase64   *string  `json:"body_base64,omitempty"`
	BodyEncoding string   `json:"body_encoding,omitempty"` // "text" or "base64"; absent in lists
	Size         int64    `json:"size"`
	Truncated    bool     `json:"truncated"`
	RemoteAddr   string   `json:"remote_addr"`
	TLS          bool     `json:"tls"`
	ReceivedAt   string   `json:"received_at"`
	ReadMillis   float64  `json:"read_ms"`
	Reply        Reply    `json:"reply"`
	Email        *Email   `json:"email,omitempty"`
}

func (h *Handler) captureJSON(c *Capture) captureJSON {
	j := captureJSON{
		ID: c.ID, Bin: c.Bin, Kind: c.Kind, Method: c.Method, Path: c.Path, Query: c.Query, Proto: c.Proto,
		Headers: c.Headers, Size: c.Size, Truncated: c.Truncated, RemoteAddr: c.RemoteAddr, TLS: c.TLS,
		ReceivedAt: c.ReceivedAt.Format(TimeFormat), ReadMillis: float64(c.ReadTime) / float64(time.Millisecond),
		Reply: c.Reply,
	}
	if j.Headers == nil {
		j.Headers = []Header{}
	}
	if c.Body != nil {
		if utf8.Valid(c.Body) {
			s := string(c.Body)
			j.Body, j.BodyEncoding = &s, "text"
		} else {
			s := base64.StdEncoding.EncodeToString(c.Body)
			j.BodyBase64, j.BodyEncoding = &s, "base64"
		}
	}
	if c.Email != nil {
		e := *c.Email
		e.Attachments = make([]Attachment, len(c.Email.Attachments))
		for i, a := range c.Email.Attachments {
			a.URL = fmt.Sprintf("/api/v1/bins/%s/captures/%d/attachments/%d", c.Bin, c.ID, i)
			e.Attachments[i] = a
		}
		j.Email = &e
	}
	return j
}

// list is the shape of every list: {"items": [...], "next": cursor or null}.
type list[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

// binVar is the {bin} of the route; the router matches escaped paths.
func binVar(r *http.Request) (string, error) {
	name, err := url.PathUnescape(mux.Vars(r)["bin"])
	if err != nil {
		return "", errorf(ErrInvalid, "bin name: %v", err)
	}
	return NormalizeBinName(name)
}

func idVar(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(ErrInvalid, "capture id %q is not a positive integer", mux.Vars(r)["id"])
	}
	return id, nil
}

// newBinName makes a random bin name such as "k3x9q2mzta".
func newBinName() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (h *Handler) createBin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name     string          `json:"name"`
		Scenario json.RawMessage `json:"scenario"`
	}
	if err := decodeJSON(r, &req); err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	var stored []byte
	if len(req.Scenario) > 0 && string(req.Scenario) != "null" {
		script, err := ParseScript(req.Scenario)
		if err != nil {
			WriteError(w, h.Logger, err)
			return
		}
		if stored, err = json.Marshal(script); err != nil {
			WriteError(w, h.Logger, err)
			return
		}
	}
	name := req.Name
	if name == "" {
		name = newBinName()
	}
	name, err := NormalizeBinName(name)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	if err := h.Store.CreateBin(r.Context(), name, stored, h.now()); err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	h.Scripts.Forget(name) // load the new script on first use
	b, err := h.Store.FindBin(r.Context(), name)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.binJSON(r, b))
}

func (h *Handler) listBins(w http.ResponseWriter, r *http.Request) {
	bins, err := h.Store.FindBins(r.Context())
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	out := list[binJSON]{Items: make([]binJSON, len(bins))}
	for i, b := range bins {
		out.Items[i] = h.binJSON(r, b)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getBin(w http.ResponseWriter, r *http.Request) {
	name, err := binVar(r)
	if err == nil {
		var b *Bin
		if b, err = h.Store.FindBin(r.Context(), name); err == nil {
			writeJSON(w, http.StatusOK, h.binJSON(r, b))
			return
		}
	}
	WriteError(w, h.Logger, err)
}

func (h *Handler) deleteBin(w http.ResponseWriter, r *http.Request) {
	name, err := binVar(r)
	if err == nil {
		err = h.Store.DeleteBin(r.Context(), name)
		h.Scripts.Forget(name)
	}
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) clearBin(w http.ResponseWriter, r *http.Request) {
	name, err := binVar(r)
	if err == nil {
		err = h.Store.ClearBin(r.Context(), name)
	}
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// captureFilter reads limit, before, after, kind and q from the query.
func captureFilter(r *http.Request) (CaptureFilter, error) {
	var f CaptureFilter
	var err error
	if f.Bin, err = binVar(r); err != nil {
		return f, err
	}
	q := r.URL.Query()
	intParam := func(name string, lo, hi int64) (int64, error) {
		v := q.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			return 0, errorf(ErrInvalid, "%s=%q: want an integer from %d to %d", name, v, lo, hi)
		}
		return n, nil
	}
	limit, err := intParam("limit", 1, MaxLimit)
	if err != nil {
		return f, err
	}
	f.Limit = int(limit)
	if f.Before, err = intParam("before", 1, 1<<62); err != nil {
		return f, err
	}
	if f.After, err = intParam("after", 0, 1<<62); err != nil {
		return f, err
	}
	switch f.Kind = q.Get("kind"); f.Kind {
	case "", KindHTTP, KindEmail:
	default:
		return f, errorf(ErrInvalid, "kind=%q: want http or email", f.Kind)
	}
	f.Q = q.Get("q")
	return f, nil
}

func (h *Handler) listCaptures(w http.ResponseWriter, r *http.Request) {
	f, err := captureFilter(r)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	want := f.Limit
	f.Limit++ // one more tells whether there is a next page
	caps, err := h.Store.FindCaptures(r.Context(), f)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	out := list[captureJSON]{Items: make([]captureJSON, 0, min(len(caps), want))}
	for i, c := range caps {
		if i == want {
			next := strconv.FormatInt(caps[i-1].ID, 10)
			out.Next = &next
			break
		}
		out.Items = append(out.Items, h.captureJSON(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) findCapture(r *http.Request) (*Capture, error) {
	name, err := binVar(r)
	if err != nil {
		return nil, err
	}
	id, err := idVar(r)
	if err != nil {
		return nil, err
	}
	return h.Store.FindCapture(r.Context(), name, id)
}

func (h *Handler) getCapture(w http.ResponseWriter, r *http.Request) {
	c, err := h.findCapture(r)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, h.captureJSON(c))
}

// rawCapture sends the body bytes as received. They are served as a
// download in a sandbox, never as a page of ours.
func (h *Handler) rawCapture(w http.ResponseWriter, r *http.Request) {
	c, err := h.findCapture(r)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	name, ctype := fmt.Sprintf("capture-%d.bin", c.ID), "application/octet-stream"
	if c.Kind == KindEmail {
		name, ctype = fmt.Sprintf("capture-%d.eml", c.ID), "message/rfc822"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(c.Body)))
	w.Write(c.Body)
}

// DefaultNextTimeout and MaxNextTimeout bound the captures/next long poll.
const (
	DefaultNextTimeout = 30 * time.Second
	MaxNextTimeout     = 10 * time.Minute
)

func (h *Handler) nextCapture(w http.ResponseWriter, r *http.Request) {
	f, err := captureFilter(r)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	timeout := DefaultNextTimeout
	if v := r.URL.Query().Get("timeout"); v != "" {
		if timeout, err = time.ParseDuration(v); err != nil || timeout <= 0 || timeout > MaxNextTimeout {
			WriteError(w, h.Logger, errorf(ErrInvalid, "timeout=%q: want a duration such as 30s, at most %s", v, MaxNextTimeout))
			return
		}
	}
	// The server's write timeout is shorter than a long poll may be.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + 10*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	c, err := h.Store.WaitCapture(ctx, f)
	if err != nil {
		if errors.Is(err, ErrTimeout) {
			err = errorf(ErrTimeout, "no capture after id %d within %s", f.After, timeout)
		}
		WriteError(w, h.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, h.captureJSON(c))
}

// validateTarget checks that raw is an absolute http(s) URL.
func validateTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errorf(ErrInvalid, "url %q: want an absolute http or https URL", raw)
	}
	return u, nil
}
