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
	"reflect"
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
		return jsonError(err)
	}
	if dec.More() {
		return errorf(ErrInvalid, "malformed JSON: data after the value")
	}
	return nil
}

// jsonError says what is wrong with a request body in the client's terms:
// where the JSON breaks, which field is unknown or has the wrong type, and
// never the name of a Go type.
func jsonError(err error) error {
	var (
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return errorf(ErrInvalid, "malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(ErrInvalid, "malformed JSON: it ends too soon")
	case errors.As(err, &ute):
		if ute.Field == "" {
			return errorf(ErrInvalid, "the body must be a JSON %s, not %s", jsonKind(ute.Type), ute.Value)
		}
		return errorf(ErrInvalid, "field %q must be %s %s, not %s", ute.Field, article(jsonKind(ute.Type)), jsonKind(ute.Type), ute.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errorf(ErrInvalid, "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return errorf(ErrInvalid, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names the JSON value that decodes into t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

func article(kind string) string {
	if kind == "object" || kind == "array" {
		return "an"
	}
	return "a"
}

// NewRouter returns a router set up for callbin's routes: paths are
// matched as received (escaped, never cleaned or redirected, since a
// capture keeps them as they came) and unknown routes and methods get JSON
// errors; a 405 lists in Allow the methods the path's routes take.
func NewRouter() *mux.Router {
	r := mux.NewRouter()
	r.SkipClean(true)
	r.UseEncodedPath()
	r.NotFoundHandler = http.HandlerFunc(NotFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if allow := allowedMethods(r, req); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
		}
		MethodNotAllowed(w, req)
	})
	return r
}

// allowedMethods returns the methods for which router has a route that
// matches req's path.
func allowedMethods(router *mux.Router, req *http.Request) []string {
	var allow []string
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete} {
		try := req.Clone(req.Context())
		try.Method = method
		var match mux.RouteMatch
		if router.Match(try, &match) && match.MatchErr == nil {
			allow = append(allow, method)
		}
	}
	return allow
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
