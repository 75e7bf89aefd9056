package inbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// ErrorBody is the JSON shape of every API error:
// {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody. Line and Field point into a
// script that was refused.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
}

// errorStatus is the one table from error kind to HTTP status and code.
func errorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, "invalid_request"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, ErrTimeout):
		return http.StatusRequestTimeout, "timeout"
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, context.Canceled):
		return 499, "canceled"
	default:
		return http.StatusInternalServerError, "internal"
	}
}

// errorDetailer is an error that adds details (a line, a field) to its API
// error.
type errorDetailer interface {
	ErrorDetail() ErrorDetail
}

// WriteError answers err as a JSON API error with the status of its kind.
// Only internal errors are logged: the others are the client's.
func WriteError(w http.ResponseWriter, logger *slog.Logger, err error) {
	status, code := errorStatus(err)
	detail := ErrorDetail{Code: code, Message: err.Error()}
	var d errorDetailer
	if errors.As(err, &d) {
		detail = d.ErrorDetail()
		detail.Code = cmp.Or(detail.Code, code)
	}
	if status == http.StatusInternalServerError {
		if logger != nil {
			logger.Error("internal error", "err", err)
		}
		detail.Message = "internal error"
	}
	writeJSON(w, status, ErrorBody{Error: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// maxJSONBody bounds API request bodies.
const maxJSONBody = 1 << 20

// decodeJSON reads a JSON request body into v, refusing unknown fields and
// trailing data. An empty body leaves v as it is.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return errorf(ErrInvalid, "reading body: %v", err)
	}
	if len(body) > maxJSONBody {
		return errorf(ErrInvalid, "body is over %d bytes", maxJSONBody)
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(ErrInvalid, "malformed JSON: %v", err)
	}
	if dec.More() {
		return errorf(ErrInvalid, "malformed JSON: data after the value")
	}
	return nil
}

// NewRouter returns a router set up for callbin's routes: paths are
// matched as received (escaped, never cleaned or redirected, since a
// capture keeps them as they came) and unknown routes and methods get JSON
// errors.
func NewRouter() *mux.Router {
	r := mux.NewRouter()
	r.SkipClean(true)
	r.UseEncodedPath()
	r.NotFoundHandler = http.HandlerFunc(NotFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(MethodNotAllowed)
	return r
}

// NotFound answers unknown routes with a JSON 404.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, nil, errorf(ErrNotFound, "no route for %s %s", r.Method, r.URL.EscapedPath()))
}

// MethodNotAllowed answers a known route called with the wrong method.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{
		Code: "method_not_allowed", Message: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.EscapedPath()),
	}})
}
