package inbox

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"time"
	"unicode/utf8"
)

// replayBodyLimit is how much of a replay's reply body is returned.
const replayBodyLimit = 64 << 10

// hopHeaders are not sent again on a replay: they belong to the first
// connection, or net/http sets them itself.
var hopHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Connection": true, "Keep-Alive": true, "Transfer-Encoding": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Proxy-Connection": true, "Proxy-Authorization": true,
}

type replayResult struct {
	URL          string   `json:"url"`
	Status       int      `json:"status"`
	Headers      []Header `json:"headers"`
	Body         *string  `json:"body,omitempty"`
	BodyBase64   *string  `json:"body_base64,omitempty"`
	BodyEncoding string   `json:"body_encoding"`
	Truncated    bool     `json:"truncated"`
	LatencyMS    float64  `json:"latency_ms"`
}

// replay sends a stored HTTP capture again, method, headers and body, to
// the URL given, and returns the reply seen.
func (h *Handler) replay(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL string `json:"url"`
	}
	if err := decodeJSON(r, &req); err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	target, err := validateTarget(req.URL)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	c, err := h.findCapture(r)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	if c.Kind != KindHTTP {
		WriteError(w, h.Logger, errorf(ErrInvalid, "capture %d is an e-mail; only HTTP captures can be replayed", c.ID))
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), c.Method, target.String(), bytes.NewReader(c.Body))
	if err != nil {
		WriteError(w, h.Logger, errorf(ErrInvalid, "%v", err))
		return
	}
	for _, hd := range c.Headers {
		if !hopHeaders[textproto.CanonicalMIMEHeaderKey(hd[0])] {
			out.Header.Add(hd[0], hd[1])
		}
	}
	start := time.Now()
	resp, err := h.Client.Do(out)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, ErrorBody{Error: ErrorDetail{
			Code: "replay_failed", Message: fmt.Sprintf("replay to %s: %v", target, err),
		}})
		return
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, replayBodyLimit+1))
	res := replayResult{
		URL:       target.String(),
		Status:    resp.StatusCode,
		Headers:   []Header{},
		LatencyMS: float64(time.Since(start)) / float64(time.Millisecond),
		Truncated: len(body) > replayBodyLimit || readErr != nil,
	}
	body = body[:min(len(body), replayBodyLimit)]
	for k, vs := range resp.Header {
		for _, v := range vs {
			res.Headers = append(res.Headers, Header{k, v})
		}
	}
	if utf8.Valid(body) {
		s := string(body)
		res.Body, res.BodyEncoding = &s, "text"
	} else {
		s := base64.StdEncoding.EncodeToString(body)
		res.BodyBase64, res.BodyEncoding = &s, "base64"
	}
	writeJSON(w, http.StatusOK, res)
}
