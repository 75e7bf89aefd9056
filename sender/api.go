package sender

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// Request body limit of the task and profile APIs.
const maxRequestBody = 1 << 20

// ErrTooLarge is a request body over the API's limit.
var ErrTooLarge = errors.New("request body larger than 1 MiB")

// Register adds the task API (/v1/task..., /v1/tasks) and the profile API
// (/api/v1/profile) to r, and answers every other /v1 path and method with
// the task API's errors (404, or 405 with Allow). Register it before any
// catch-all route of r.
func (e *Engine) Register(r *mux.Router) {
	v1 := func(h func(*http.Request) (any, error)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if err := checkAuth(req); err != nil {
				w.Header().Set("WWW-Authenticate", `Basic realm="callbin"`)
				e.writeV1Error(w, req, err, nil)
				return
			}
			v, err := h(req)
			if err != nil {
				var ce *CreateError
				var t *Task
				if errors.As(err, &ce) {
					t = ce.Task
				}
				e.writeV1Error(w, req, err, t)
				return
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	get := []string{http.MethodGet, http.MethodHead}
	r.Handle("/v1/tasks", v1(e.handleList)).Methods(get...)
	r.Handle("/v1/task/{type}", v1(e.handleCreate)).Methods(http.MethodPost)
	r.Handle("/v1/task/{task_id}", v1(e.handleGet)).Methods(get...)
	r.Handle("/v1/task/{task_id}/complete", v1(e.handleComplete)).Methods(http.MethodPost)
	r.Handle("/v1/task/{task_id}/audit", v1(e.handleAudit)).Methods(http.MethodPost)
	r.Handle("/v1/task/{task_id}/recall", v1(e.handleRecall)).Methods(http.MethodPost)
	r.Handle("/v1/task/{task_id}/cancel", v1(e.handleCancel)).Methods(http.MethodPost)
	r.Handle("/v1/task/{task_id}/callbacks/retry", v1(e.handleRetry)).Methods(http.MethodPost)
	r.Handle("/v1/task/{task_id}/callbacks", v1(e.handleCallbacks)).Methods(get...)
	r.HandleFunc("/api/v1/profile", e.handleProfile).Methods(http.MethodGet, http.MethodPut)
	// Any other /v1 path or method gets the hosted API's error shape: 405
	// with Allow when the path is a route, 404 when it is none.
	var unknown *mux.Route
	unknown = r.PathPrefix("/v1/").HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
			probe := req.Clone(req.Context())
			probe.Method = m
			var match mux.RouteMatch
			if r.Match(probe, &match) && match.MatchErr == nil && match.Route != unknown {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			e.writeV1Error(w, req, errorOf(ErrNotFound, "no route for %s %s", req.Method, req.URL.EscapedPath()), nil)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		e.writeV1Error(w, req, errorOf(ErrMethod, "%s is not allowed on %s; use %s", req.Method,
			req.URL.EscapedPath(), strings.Join(allow, " or ")), nil)
	})
}

// pathVar is the route variable name, unescaped (the router matches paths
// as received, escaped).
func pathVar(r *http.Request, name string) string {
	v := mux.Vars(r)[name]
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// checkAuth accepts HTTP basic auth with any non-empty key as user name.
func checkAuth(r *http.Request) error {
	if r.Header.Get("Authorization") == "" {
		return fmt.Errorf("%w: send your API key as the basic auth user name", ErrUnauthorized)
	}
	user, _, ok := r.BasicAuth()
	if !ok || user == "" {
		return fmt.Errorf("%w: use HTTP basic auth with the API key as user name", ErrUnauthorized)
	}
	return nil
}

// statusOf is the one table from error kind to HTTP status and API code.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, ErrDuplicate):
		return http.StatusConflict, "conflict"
	case errors.Is(err, ErrState), errors.Is(err, ErrNoCallback):
		return http.StatusConflict, "conflict"
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnknownType), errors.Is(err, ErrBadTarget):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, ErrNotOpen):
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

// errorMessage is what a client sees: the error for expected kinds, a
// generic text for internal ones (which are logged instead).
func (e *Engine) errorMessage(r *http.Request, err error, status int) string {
	if status == http.StatusInternalServerError {
		e.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return "internal error"
	}
	return err.Error()
}

// writeV1Error writes the hosted API's error shape; a refused creation that
// recorded an error task also names its task_id.
func (e *Engine) writeV1Error(w http.ResponseWriter, r *http.Request, err error, t *Task) {
	status, _ := statusOf(err)
	body := map[string]any{"status_code": status, "error": e.errorMessage(r, err, status)}
	if t != nil {
		body["task_id"] = t.TaskID
	}
	writeJSON(w, status, body)
}

// writeAPIError writes the /api/v1 error shape.
func (e *Engine) writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := statusOf(err)
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": e.errorMessage(r, err, status)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"status_code":500,"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w: %w", ErrInvalid, err)
	}
	if len(b) > maxRequestBody {
		return nil, ErrTooLarge
	}
	return b, nil
}

// bodyErr says what is wrong with a request body that did not decode as a
// JSON object: not an object, malformed (and where), an unknown field.
// encoding/json's wording about Go types never reaches the client.
func bodyErr(b []byte, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fieldErr("body", "malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case !isObject(b):
		return fieldErr("body", "must be a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fieldErr("body", "%s", strings.TrimPrefix(err.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldErr("body", "malformed JSON: it ends too soon")
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return fieldErr("body", "a value has the wrong type (%s)", ute.Value)
	}
	return fieldErr("body", "%s", strings.TrimPrefix(err.Error(), "json: "))
}

// decodeStrict reads a JSON object into v, refusing unknown fields.
func decodeStrict(r *http.Request, v any, allowEmpty bool) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if allowEmpty {
			return nil
		}
		return fieldErr("body", "must be a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return fieldErr(ute.Field, "must be %s", ute.Type.String())
		}
		return bodyErr(b, err)
	}
	if dec.More() {
		return fieldErr("body", "must hold one JSON object")
	}
	return nil
}

func (e *Engine) handleCreate(r *http.Request) (any, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	return e.CreateTask(r.Context(), pathVar(r, "type"), b)
}

func (e *Engine) handleGet(r *http.Request) (any, error) {
	return e.GetTask(r.Context(), pathVar(r, "task_id"))
}

func (e *Engine) handleComplete(r *http.Request) (any, error) {
	var in struct {
		Response json.RawMessage `json:"response"`
	}
	if err := decodeStrict(r, &in, false); err != nil {
		return nil, err
	}
	return e.CompleteTask(r.Context(), pathVar(r, "task_id"), in.Response)
}

func (e *Engine) handleAudit(r *http.Request) (any, error) {
	var a Audit
	if err := decodeStrict(r, &a, false); err != nil {
		return nil, err
	}
	return e.AuditTask(r.Context(), pathVar(r, "task_id"), a)
}

func (e *Engine) handleRecall(r *http.Request) (any, error) {
	return e.RecallTask(r.Context(), pathVar(r, "task_id"))
}

func (e *Engine) handleCancel(r *http.Request) (any, error) {
	return e.CancelTask(r.Context(), pathVar(r, "task_id"))
}

func (e *Engine) handleRetry(r *http.Request) (any, error) {
	return e.RetryCallback(r.Context(), pathVar(r, "task_id"))
}

func (e *Engine) handleCallbacks(r *http.Request) (any, error) {
	ds, err := e.Deliveries(r.Context(), pathVar(r, "task_id"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"items": ds}, nil
}

func (e *Engine) handleList(r *http.Request) (any, error) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		return nil, err
	}
	return e.ListTasks(r.Context(), f)
}

// parseFilter reads the list filters; a bad value names its parameter.
func parseFilter(q map[string][]string) (TaskFilter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f := TaskFilter{Status: get("status"), Type: get("type"), CustomerReviewStatus: get("customer_review_status"),
		UniqueID: get("unique_id"), NextToken: get("next_token")}
	switch f.Status {
	case "", StatusPending, StatusCompleted, StatusCanceled, StatusError:
	default:
		return f, fieldErr("status", "%q is not one of pending, completed, canceled, error", truncate(f.Status, 32))
	}
	switch f.CustomerReviewStatus {
	case "", ReviewAccepted, ReviewRejected, ReviewFixed:
	default:
		return f, fieldErr("customer_review_status", "%q is not one of accepted, rejected, fixed", truncate(f.CustomerReviewStatus, 32))
	}
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return f, fieldErr("limit", "must be a whole number from 1 to 100")
		}
		f.Limit = n
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{
		{"created_after", &f.CreatedAfter}, {"created_before", &f.CreatedBefore},
		{"updated_after", &f.UpdatedAfter}, {"updated_before", &f.UpdatedBefore},
		{"completed_after", &f.CompletedAfter}, {"completed_before", &f.CompletedBefore},
	} {
		s := get(p.name)
		if s == "" {
			continue
		}
		t, err := parseTime(s)
		if err != nil {
			return f, fieldErr(p.name, "%q is not an ISO 8601 time like 2006-01-02T15:04:05Z or a date", truncate(s, 64))
		}
		*p.dst = &t
	}
	return f, nil
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, ErrInvalid
}

func (e *Engine) handleProfile(w http.ResponseWriter, r *http.Request) {
	if !e.opened.Load() {
		e.writeAPIError(w, r, ErrNotOpen)
		return
	}
	if r.Method == http.MethodPut {
		var u ProfileUpdate
		if err := decodeStrict(r, &u, false); err != nil {
			e.writeAPIError(w, r, err)
			return
		}
		p, err := e.SetProfile(r.Context(), u)
		if err != nil {
			e.writeAPIError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
		return
	}
	writeJSON(w, http.StatusOK, e.Profile())
}
