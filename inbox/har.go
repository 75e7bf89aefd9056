package inbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/), the parts a
// capture fills.
type harEntry struct {
	StartedDateTime string         `json:"startedDateTime"`
	Time            float64        `json:"time"`
	Request         harRequest     `json:"request"`
	Response        harResponse    `json:"response"`
	Cache           struct{}       `json:"cache"`
	Timings         harTimings     `json:"timings"`
	Comment         string         `json:"comment,omitempty"`
	ID              int64          `json:"_callbinId"`
	Extra           map[string]any `json:"_callbin,omitempty"`
}

type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type harRequest struct {
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Cookies     []harNV      `json:"cookies"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	PostData    *harPostData `json:"postData,omitempty"`
	HeadersSize int          `json:"headersSize"`
	BodySize    int64        `json:"bodySize"`
}

type harPostData struct {
	MimeType string  `json:"mimeType"`
	Params   []harNV `json:"params"`
	Text     string  `json:"text"`
	Encoding string  `json:"_encoding,omitempty"` // "base64" when the body is not UTF-8
}

type harResponse struct {
	Status      int        `json:"status"`
	StatusText  string     `json:"statusText"`
	HTTPVersion string     `json:"httpVersion"`
	Cookies     []harNV    `json:"cookies"`
	Headers     []harNV    `json:"headers"`
	Content     harContent `json:"content"`
	RedirectURL string     `json:"redirectURL"`
	HeadersSize int        `json:"headersSize"`
	BodySize    int        `json:"bodySize"`
	Comment     string     `json:"comment,omitempty"`
}

type harContent struct {
	Size     int    `json:"size"`
	MimeType string `json:"mimeType"`
}

type harTimings struct {
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
}

func harEntryOf(base string, c *Capture) harEntry {
	e := harEntry{
		StartedDateTime: c.ReceivedAt.Format(TimeFormat),
		Time:            float64(c.ReadTime.Microseconds()) / 1000,
		ID:              c.ID,
		Request: harRequest{
			Method: c.Method, URL: base + c.Path, HTTPVersion: c.Proto,
			Cookies: []harNV{}, Headers: []harNV{}, QueryString: []harNV{},
			HeadersSize: -1, BodySize: c.Size,
		},
		Response: harResponse{
			Status: c.Reply.Status, StatusText: http.StatusText(c.Reply.Status), HTTPVersion: c.Proto,
			Cookies: []harNV{}, Headers: []harNV{}, HeadersSize: -1, BodySize: -1,
			Content: harContent{Size: -1, MimeType: "application/json"},
		},
		Timings: harTimings{Send: 0, Wait: 0, Receive: float64(c.ReadTime.Microseconds()) / 1000},
	}
	if c.Query != "" {
		e.Request.URL += "?" + c.Query
		for _, kv := range strings.Split(c.Query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			k, _ = url.QueryUnescape(k)
			v, _ = url.QueryUnescape(v)
			e.Request.QueryString = append(e.Request.QueryString, harNV{k, v})
		}
	}
	ctype := ""
	for _, h := range c.Headers {
		e.Request.Headers = append(e.Request.Headers, harNV{h[0], h[1]})
		if strings.EqualFold(h[0], "Content-Type") {
			ctype = h[1]
		}
		if strings.EqualFold(h[0], "Cookie") {
			for _, part := range strings.Split(h[1], ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
				e.Request.Cookies = append(e.Request.Cookies, harNV{k, v})
			}
		}
	}
	if c.Reply.Fault != "" {
		e.Response.Status, e.Response.StatusText = 0, ""
		e.Response.Comment = "fault: " + c.Reply.Fault
	}
	if len(c.Body) > 0 || c.Size > 0 {
		pd := &harPostData{MimeType: ctype, Params: []harNV{}}
		if utf8.Valid(c.Body) {
			pd.Text = string(c.Body)
		} else {
			pd.Text, pd.Encoding = base64.StdEncoding.EncodeToString(c.Body), "base64"
		}
		e.Request.PostData = pd
	}
	if c.Truncated {
		e.Comment = "body truncated"
	}
	return e
}

// harPage is how many captures the export reads at a time.
const harPage = 200

// exportHAR writes the bin's HTTP captures, oldest first, as HAR 1.2. It
// streams page by page, so a large bin does not sit in memory.
func (h *Handler) exportHAR(w http.ResponseWriter, r *http.Request) {
	name, err := binVar(r)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	f := CaptureFilter{Bin: name, Kind: KindHTTP, Oldest: true, Bodies: true, Limit: harPage}
	caps, err := h.Store.FindCaptures(r.Context(), f)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.har"`, name))
	fmt.Fprintf(w, `{"log":{"version":"1.2","creator":{"name":"callbin","version":%q},"entries":[`, h.Version)
	base := baseURL(r)
	enc := json.NewEncoder(w)
	first := true
	for len(caps) > 0 {
		for _, c := range caps {
			if !first {
				w.Write([]byte{','})
			}
			first = false
			enc.Encode(harEntryOf(base, c))
		}
		f.After = caps[len(caps)-1].ID
		if caps, err = h.Store.FindCaptures(r.Context(), f); err != nil {
			// The status line is gone: end the document so that the error
			// shows as an invalid HAR, and log it.
			h.Logger.Error("har export", "bin", name, "err", err)
			return
		}
	}
	w.Write([]byte("]}}\n"))
}
