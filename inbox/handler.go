package inbox

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/callbin/callbin/scenarios"
)

// DefaultMaxBody is the default limit of a captured body.
const DefaultMaxBody = 10 << 20

// Handler serves the capture endpoints (/b/{bin}/...) and the bins API
// (/api/v1/bins/...). For captures to keep their header order, the server
// must use RecordingListener and ConnContext.
type Handler struct {
	Store       *Store
	Scripts     *Scripts // decides replies; Register makes one when nil
	MaxBody     int64    // body bytes kept per capture; default DefaultMaxBody
	EmailDomain string   // the domain shown in a bin's e-mail address; default "callbin.local"
	Metrics     *Metrics
	Logger      *slog.Logger
	Client      *http.Client // for replays; default: 10 s timeout, redirects not followed
	Now         func() time.Time
	Version     string // shown in exports
	// SlowInterval is the pause between the bytes of a scripted slow reply;
	// default DefaultSlowInterval.
	SlowInterval time.Duration
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) maxBody() int64 {
	if h.MaxBody > 0 {
		return h.MaxBody
	}
	return DefaultMaxBody
}

// Register adds the capture endpoints and the bins API to r.
func (h *Handler) Register(r *mux.Router) {
	if h.Logger == nil {
		h.Logger = slog.New(slog.DiscardHandler)
	}
	if h.Scripts == nil {
		h.Scripts = &Scripts{Store: h.Store}
	}
	if h.EmailDomain == "" {
		h.EmailDomain = "callbin.local"
	}
	if h.Client == nil {
		h.Client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	r.PathPrefix("/b/").HandlerFunc(h.capture)

	const bins = "/api/v1/bins"
	r.HandleFunc(bins, h.createBin).Methods(http.MethodPost)
	r.HandleFunc(bins, h.listBins).Methods(http.MethodGet)
	r.HandleFunc(bins+"/{bin}", h.getBin).Methods(http.MethodGet)
	r.HandleFunc(bins+"/{bin}", h.deleteBin).Methods(http.MethodDelete)
	r.HandleFunc(bins+"/{bin}/captures", h.listCaptures).Methods(http.MethodGet)
	r.HandleFunc(bins+"/{bin}/captures", h.clearBin).Methods(http.MethodDelete)
	r.HandleFunc(bins+"/{bin}/captures/next", h.nextCapture).Methods(http.MethodGet)
	r.HandleFunc(bins+"/{bin}/captures/{id}", h.getCapture).Methods(http.MethodGet)
	r.HandleFunc(bins+"/{bin}/captures/{id}/raw", h.rawCapture).Methods(http.MethodGet)
	r.HandleFunc(bins+"/{bin}/captures/{id}/attachments/{n}", h.attachment).Methods(http.MethodGet)
	r.HandleFunc(bins+"/{bin}/captures/{id}/replay", h.replay).Methods(http.MethodPost)
	r.HandleFunc(bins+"/{bin}/export.har", h.exportHAR).Methods(http.MethodGet)
	r.HandleFunc(bins+"/{bin}/scenario", h.putScenario).Methods(http.MethodPut)
	r.HandleFunc(bins+"/{bin}/scenario", h.deleteScenario).Methods(http.MethodDelete)
	r.HandleFunc(bins+"/{bin}/scenario/reset", h.resetScenario).Methods(http.MethodPost)
}

// splitBinPath takes the bin name out of an escaped capture path
// (/b/{bin}[/...]).
func splitBinPath(escaped string) (string, error) {
	rest, ok := strings.CutPrefix(escaped, "/b/")
	if !ok {
		return "", errorf(ErrInvalid, "a capture URL names a bin: /b/{bin}")
	}
	seg, _, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(seg)
	if err != nil {
		return "", errorf(ErrInvalid, "bin name: %v", err)
	}
	return NormalizeBinName(name)
}

// capture stores whatever comes to /b/{bin}/... and answers only once it is
// committed.
func (h *Handler) capture(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	arrived := h.Store.Expect()
	defer arrived()
	path := r.URL.EscapedPath()
	bin, err := splitBinPath(path)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	c := &Capture{
		Bin:        bin,
		Kind:       KindHTTP,
		Method:     r.Method,
		Path:       path,
		Query:      r.URL.RawQuery,
		Proto:      r.Proto,
		Headers:    HeadersInOrder(r),
		RemoteAddr: r.RemoteAddr,
		TLS:        r.TLS != nil,
		ReceivedAt: h.now(),
	}
	limit := h.maxBody()
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, limit) + 1))
	}
	_, readErr := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	c.ReadTime = time.Since(start)
	body := buf.Bytes()
	if int64(len(body)) > limit {
		body, c.Truncated = body[:limit], true
	}
	c.Body, c.Size = body, int64(len(body))

	status := http.StatusOK
	rep := scenarios.Reply{Default: true, Step: -1}
	switch {
	case readErr != nil:
		// The client went away or stalled mid-body: keep what came.
		c.Truncated, status = true, http.StatusBadRequest
	default:
		if c.Truncated {
			status = http.StatusRequestEntityTooLarge
		}
		if rep, err = h.Scripts.Next(r.Context(), bin); err != nil {
			WriteError(w, h.Logger, fmt.Errorf("capture not stored: %w", err))
			return
		}
		if !rep.Default && rep.Status != 0 {
			status = rep.Status
		}
	}
	c.Reply = Reply{Status: status, Fault: string(rep.Fault)}
	if rep.Fault.NoStatus() {
		c.Reply.Status = 0
	}

	arrived()
	if err := h.Store.Add(r.Context(), c); err != nil {
		WriteError(w, h.Logger, fmt.Errorf("capture not stored: %w", err))
		return
	}
	if m := h.Metrics; m != nil {
		m.Captures.WithLabelValues(c.Kind).Inc()
		m.Bytes.WithLabelValues(c.Kind).Add(float64(c.Size))
		if c.Truncated {
			m.Truncated.Inc()
		}
		m.CaptureLatency.Observe(time.Since(start).Seconds())
	}

	if !rep.Default || rep.Delay > 0 || rep.Fault != scenarios.FaultNone {
		h.scripted(w, r, c, rep)
		return
	}
	w.Header().Set("Callbin-Capture-Id", strconv.FormatInt(c.ID, 10))
	switch status {
	case http.StatusOK:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"ok":true}`+"\n")
	case http.StatusRequestEntityTooLarge:
		WriteError(w, h.Logger, errorf(ErrTooLarge, "body is over the limit of %d bytes: the first %d bytes were kept", limit, limit))
	default:
		WriteError(w, h.Logger, errorf(ErrInvalid, "reading body: %v", readErr))
	}
}
