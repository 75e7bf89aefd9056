package frontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

var errMethod = errors.New("method not allowed")

// handshakeError is a websocket handshake that gorilla refused, with the
// status it chose (403 for another origin, 400 for a request that is not a
// websocket upgrade).
type handshakeError struct {
	status int
	reason error
}

func (e *handshakeError) Error() string { return fmt.Sprintf("%v: %v", errHandshake, e.reason) }
func (e *handshakeError) Unwrap() error { return errHandshake }

// errorStatus is the one table from error kind to HTTP status and code.
func errorStatus(err error) (int, string) {
	var hs *handshakeError
	switch {
	case errors.As(err, &hs):
		switch hs.status {
		case http.StatusForbidden:
			return hs.status, "forbidden_origin"
		case http.StatusMethodNotAllowed:
			return hs.status, "method_not_allowed"
		case http.StatusBadRequest:
			return hs.status, "not_websocket"
		}
		return hs.status, "bad_handshake"
	case errors.Is(err, ErrBadSubscription):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, ErrHubClosed):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, "not_found"
	}
	return http.StatusInternalServerError, "internal"
}

// writeError answers with the API's error shape
// {"error":{"code":"...","message":"..."}} and logs only internal errors.
func (h *Hub) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := errorStatus(err)
	if status >= http.StatusInternalServerError && status != http.StatusServiceUnavailable {
		h.logger.Error("stream request failed", "path", r.URL.Path, "err", err)
	}
	writeJSONError(w, status, code, err)
}

func writeJSONError(w http.ResponseWriter, status int, code string, err error) {
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = "internal error"
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, msg
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
