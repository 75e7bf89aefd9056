package inbox

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/callbin/callbin/scenarios"
)

// Pace of scripted faults.
const (
	// MaxHang bounds a hang: the connection is closed after it.
	MaxHang = 10 * time.Minute
	// DefaultSlowInterval is the pause between the bytes of a slow reply.
	DefaultSlowInterval = 200 * time.Millisecond
)

// garbageBytes are sent by the garbage fault when the step gives no body:
// something no HTTP client can take for a status line.
const garbageBytes = "\x00\xff\x16\x03 this is not HTTP \xfe\r\n\r\n"

// scripted answers a stored capture the way its scenario step says: after
// the delay, with the fault, or with the scripted status, headers and body.
func (h *Handler) scripted(w http.ResponseWriter, r *http.Request, c *Capture, rep scenarios.Reply) {
	if rep.Delay > 0 {
		t := time.NewTimer(rep.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch rep.Fault {
	case scenarios.FaultReset, scenarios.FaultClose, scenarios.FaultGarbage:
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			h.Logger.Warn("scripted fault needs the connection", "fault", rep.Fault, "err", err)
			return
		}
		defer conn.Close()
		switch rep.Fault {
		case scenarios.FaultReset:
			if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
				tc.SetLinger(0) // close with RST
			} else if rc, ok := conn.(*recordingConn); ok {
				if tc, ok := rc.Conn.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
			}
		case scenarios.FaultGarbage:
			b := rep.Body
			if b == "" {
				b = garbageBytes
			}
			buf.WriteString(b)
			buf.Flush()
		}
		return
	case scenarios.FaultHang:
		t := time.NewTimer(MaxHang)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}

	status, body := c.Reply.Status, rep.Body
	if rep.Default {
		body = `{"ok":true}` + "\n"
		if status != http.StatusOK {
			body = fmt.Sprintf(`{"error":{"code":"too_large","message":"body is over the limit: the first %d bytes were kept"}}`+"\n", c.Size)
		}
		w.Header().Set("Content-Type", "application/json")
	}
	for k, v := range rep.Headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Callbin-Capture-Id", strconv.FormatInt(c.ID, 10))
	if rep.Fault != scenarios.FaultSlow {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		io.WriteString(w, body)
		return
	}
	// slow: the status and headers at once, then the body a byte at a time.
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	rc.Flush()
	interval := cmp.Or(h.SlowInterval, DefaultSlowInterval)
	rc.SetWriteDeadline(time.Now().Add(time.Duration(len(body)+10) * interval))
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; i < len(body); i++ {
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		if _, err := io.WriteString(w, body[i:i+1]); err != nil {
			return
		}
		rc.Flush()
	}
}

func (h *Handler) putScenario(w http.ResponseWriter, r *http.Request) {
	name, err := binVar(r)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, scenarios.MaxSize+1))
	if err != nil {
		WriteError(w, h.Logger, errorf(ErrInvalid, "reading body: %v", err))
		return
	}
	if len(raw) > scenarios.MaxSize {
		WriteError(w, h.Logger, errorf(ErrInvalid, "scenario is over %d bytes", scenarios.MaxSize))
		return
	}
	script, err := ParseScript(raw)
	if err == nil {
		err = h.Scripts.Set(r.Context(), name, script)
	}
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	h.writeBin(w, r, http.StatusOK, name)
}

func (h *Handler) deleteScenario(w http.ResponseWriter, r *http.Request) {
	name, err := binVar(r)
	if err == nil {
		if _, err = h.Store.FindBin(r.Context(), name); err == nil {
			err = h.Scripts.Set(r.Context(), name, nil)
		}
	}
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	h.writeBin(w, r, http.StatusOK, name)
}

func (h *Handler) resetScenario(w http.ResponseWriter, r *http.Request) {
	name, err := binVar(r)
	if err == nil {
		if _, err = h.Store.FindBin(r.Context(), name); err == nil {
			err = h.Scripts.Reset(r.Context(), name)
		}
	}
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	h.writeBin(w, r, http.StatusOK, name)
}

// writeBin answers with the bin as it is now.
func (h *Handler) writeBin(w http.ResponseWriter, r *http.Request, status int, name string) {
	b, err := h.Store.FindBin(r.Context(), name)
	if err != nil {
		WriteError(w, h.Logger, err)
		return
	}
	writeJSON(w, status, h.binJSON(r, b))
}
