package run

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ErrAPI is wrapped by every error of a call to the callbin's API that got
// an answer other than the one expected.
var ErrAPI = errors.New("callbin API")

// APIError is an API call that was answered with an error status.
type APIError struct {
	Method, Path string
	Status       int
	Message      string // the API's error message, or the start of the body
	TaskID       string // a refused task creation that still made a task in status error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

// Unwrap returns ErrAPI.
func (e *APIError) Unwrap() error { return ErrAPI }

// api calls one callbin's HTTP API.
type api struct {
	base   string // http://host:port, no trailing slash
	token  string
	client *http.Client
}

// maxAnswer bounds what is read of an API answer.
const maxAnswer = 64 << 20

// do sends a request with a JSON body (nil: none, raw []byte: as is) and
// decodes a 2xx answer into out (unless nil).
func (a *api) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := jsonText(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if strings.HasPrefix(path, "/v1/") {
		// The task API takes an API key as the basic auth user name; a
		// callbin with an auth token takes the token there too.
		user := a.token
		if user == "" {
			user = "callbin-scenario-run"
		}
		req.SetBasicAuth(user, "")
	} else if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(method, path, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: %w: answer is not the JSON expected: %v", method, path, ErrAPI, err)
	}
	return nil
}

// apiError reads both error shapes: {"error": {"code", "message"}} of
// /api and {"status_code", "error", "task_id"?} of /v1.
func apiError(method, path string, status int, data []byte) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	var nested struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	var flat struct {
		Error  string `json:"error"`
		TaskID string `json:"task_id"`
	}
	switch {
	case json.Unmarshal(data, &nested) == nil && nested.Error.Message != "":
		e.Message = nested.Error.Message
	case json.Unmarshal(data, &flat) == nil && flat.Error != "":
		e.Message, e.TaskID = flat.Error, flat.TaskID
	default:
		e.Message = strings.TrimSpace(clip(string(data), 200))
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	return e
}

// binJSON is a bin as the bins API answers it.
type binJSON struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	Email string `json:"email"`
}

// taskJSON is the part of a task the runner reads.
type taskJSON struct {
	TaskID            string `json:"task_id"`
	Status            string `json:"status"`
	CallbackSucceeded *bool  `json:"callback_succeeded"`
}

func (a *api) createBin(ctx context.Context, name string) (binJSON, error) {
	var b binJSON
	err := a.do(ctx, http.MethodPost, "/api/v1/bins", map[string]any{"name": name}, &b)
	return b, err
}

func (a *api) putScenario(ctx context.Context, bin string, script []byte) error {
	return a.do(ctx, http.MethodPut, "/api/v1/bins/"+url.PathEscape(bin)+"/scenario", script, nil)
}

func (a *api) createTask(ctx context.Context, typ string, req map[string]any) (taskJSON, error) {
	var t taskJSON
	err := a.do(ctx, http.MethodPost, "/v1/task/"+url.PathEscape(typ), req, &t)
	return t, err
}

func (a *api) getTask(ctx context.Context, id string) (taskJSON, error) {
	var t taskJSON
	err := a.do(ctx, http.MethodGet, "/v1/task/"+url.PathEscape(id), nil, &t)
	return t, err
}

func (a *api) deliveries(ctx context.Context, id string) ([]Delivery, error) {
	var out struct {
		Items []Delivery `json:"items"`
	}
	err := a.do(ctx, http.MethodGet, "/v1/task/"+url.PathEscape(id)+"/callbacks", nil, &out)
	return out.Items, err
}

// step takes one step on a task.
func (a *api) step(ctx context.Context, id string, st Step) error {
	p := "/v1/task/" + url.PathEscape(id) + "/"
	var body any = []byte{}
	switch st.Action {
	case ActionComplete:
		body = map[string]any{"response": st.Body}
		p += "complete"
	case ActionAudit:
		body = st.Body
		p += "audit"
	case ActionRetry:
		p += "callbacks/retry"
	default:
		p += st.Action
	}
	return a.do(ctx, http.MethodPost, p, body, nil)
}

// Most captures read back per bin; a run that makes more checks the newest.
const maxCaptures = 10_000

// captures returns a bin's captures, oldest first. Bodies (and e-mail
// details) are loaded one by one when full is true.
func (a *api) captures(ctx context.Context, bin string, full bool) ([]Capture, error) {
	var all []Capture
	before := ""
	for len(all) < maxCaptures {
		q := url.Values{"limit": {"1000"}}
		if before != "" {
			q.Set("before", before)
		}
		var page struct {
			Items []Capture `json:"items"`
			Next  *string   `json:"next"`
		}
		if err := a.do(ctx, http.MethodGet, "/api/v1/bins/"+url.PathEscape(bin)+"/captures?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Next == nil || *page.Next == "" || len(page.Items) == 0 {
			break
		}
		before = *page.Next
	}
	// newest first -> oldest first
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	if full {
		for i := range all {
			var c Capture
			if err := a.do(ctx, http.MethodGet, "/api/v1/bins/"+url.PathEscape(bin)+"/captures/"+strconv.FormatInt(all[i].ID, 10), nil, &c); err != nil {
				return nil, err
			}
			all[i] = c
		}
	}
	return all, nil
}
