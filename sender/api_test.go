package sender

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCreateBadInput(t *testing.T) {
	e, log := MustEngine(t, nil)
	api := MustAPI(t, e)
	rc := MustReceiver(t, nil)
	with := func(mod func(m map[string]any)) map[string]any {
		m := categorization(rc.URL)
		mod(m)
		return m
	}
	tests := []struct {
		name     string
		typ      string
		body     any
		status   int
		field    string // must appear in the error
		callback bool   // an error callback is sent
	}{
		{"unknown type", "transcription", categorization(rc.URL), 400, "unknown task type", true},
		{"bad type name", "Bad-Name", categorization(rc.URL), 400, "unknown task type", true},
		{"missing categories", "categorization", with(func(m map[string]any) { delete(m, "categories") }), 400, "categories", true},
		{"categories not a list", "categorization", with(func(m map[string]any) { m["categories"] = "red" }), 400, "categories", true},
		{"empty categories", "categorization", with(func(m map[string]any) { m["categories"] = []string{} }), 400, "categories", true},
		{"duplicate category", "categorization", with(func(m map[string]any) { m["categories"] = []string{"a", "a"} }), 400, "categories[1]", true},
		{"missing attachment", "categorization", with(func(m map[string]any) { delete(m, "attachment") }), 400, "attachment", true},
		{"attachment not a string", "categorization", with(func(m map[string]any) { m["attachment"] = 42 }), 400, "attachment", true},
		{"bad attachment_type", "categorization", with(func(m map[string]any) { m["attachment_type"] = "hologram" }), 400, "attachment_type", true},
		{"allow_multiple not bool", "categorization", with(func(m map[string]any) { m["allow_multiple"] = "yes" }), 400, "allow_multiple", true},
		{"metadata not object", "categorization", with(func(m map[string]any) { m["metadata"] = []int{1} }), 400, "metadata", true},
		{"params not object", "generic", map[string]any{"callback_url": rc.URL, "params": "x"}, 400, "params", true},
		{"ftp callback", "categorization", with(func(m map[string]any) { m["callback_url"] = "ftp://example.com/x" }), 400, "callback_url", false},
		{"callback neither url nor address", "categorization", with(func(m map[string]any) { m["callback_url"] = "not an address" }), 400, "callback_url", false},
		{"callback not a string", "categorization", with(func(m map[string]any) { m["callback_url"] = 7 }), 400, "callback_url", false},
		{"callback port out of range", "categorization", with(func(m map[string]any) { m["callback_url"] = "http://127.0.0.1:99999/x" }), 400, "port 99999", false},
		{"empty mailto", "categorization", with(func(m map[string]any) { m["callback_url"] = "mailto:" }), 400, "without an address", false},
		{"body not json", "categorization", "{nope", 400, "body: malformed JSON at byte 2", false},
		{"body with trailing data", "categorization", `{"a":1} x`, 400, "body: malformed JSON", false},
		{"body is a list", "categorization", "[1,2]", 400, "body: must be a JSON object", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rc.requests())
			status, out := call(t, "POST", api.URL+"/v1/task/"+tc.typ, tc.body)
			if status != tc.status {
				t.Fatalf("status: got %d (%v), want %d", status, out, tc.status)
			}
			if out["status_code"] != float64(tc.status) {
				t.Fatalf("status_code: got %v, want %d", out["status_code"], tc.status)
			}
			msg, _ := out["error"].(string)
			if !strings.Contains(msg, tc.field) {
				t.Fatalf("error: got %q, want it to name %q", msg, tc.field)
			}
			taskID, _ := out["task_id"].(string)
			if !tc.callback {
				if taskID != "" {
					t.Fatalf("task_id: got %q, want none (no error callback possible)", taskID)
				}
				return
			}
			if taskID == "" {
				t.Fatalf("task_id: got none, want the error task's id")
			}
			if ok := log.decided(t, taskID); !ok {
				t.Fatalf("error callback: got callback_succeeded false, want true")
			}
			reqs := rc.waitRequests(t, before+1)
			var p Payload
			if err := json.Unmarshal(reqs[len(reqs)-1].Body, &p); err != nil {
				t.Fatal(err)
			}
			var resp struct{ Error string }
			json.Unmarshal(p.Response, &resp)
			if p.Status != StatusError || p.TaskID != taskID || !strings.Contains(resp.Error, tc.field) {
				t.Fatalf("error callback: got status %q task %q response %s, want error/%s naming %q", p.Status, p.TaskID, p.Response, taskID, tc.field)
			}
		})
	}
	// An oversized body is refused before it is parsed.
	status, out := call(t, "POST", api.URL+"/v1/task/generic", `{"params":{"x":"`+strings.Repeat("a", maxRequestBody)+`"}}`)
	if status != http.StatusRequestEntityTooLarge || out["status_code"] != 413.0 {
		t.Fatalf("oversized body: got %d %v, want 413", status, out)
	}
	// Without any callback target, a refused creation stores nothing.
	status, out = call(t, "POST", api.URL+"/v1/task/categorization", map[string]any{"attachment_type": "text"})
	if status != 400 || out["task_id"] != nil || !strings.Contains(out["error"].(string), "attachment") {
		t.Fatalf("no target: got %d %v, want 400 naming attachment and no task_id", status, out)
	}
}

func TestAuth(t *testing.T) {
	e, _ := MustEngine(t, nil)
	api := MustAPI(t, e)
	for _, tc := range []struct {
		name   string
		header string
		want   int
	}{
		{"none", "", 401},
		{"bearer", "Bearer abc", 401},
		{"empty user", "Basic Og==", 401}, // ":"
		{"any key", "Basic bGl2ZV94eXo6", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", api.URL+"/v1/tasks", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status: got %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 401 && (out["status_code"] != 401.0 || out["error"] == nil) {
				t.Fatalf("body: got %v, want {status_code: 401, error}", out)
			}
		})
	}
}

func TestTaskLifecycle(t *testing.T) {
	e, log := MustEngine(t, nil)
	api := MustAPI(t, e)
	rc := MustReceiver(t, nil)
	body := categorization(rc.URL)
	body["metadata"] = map[string]any{"order": 7}
	body["unique_id"] = "u-1"
	task := mustCall(t, "POST", api.URL+"/v1/task/categorization", body)
	id := task["task_id"].(string)
	for _, f := range []string{"task_id", "type", "instruction", "params", "status", "created_at", "updated_at",
		"completed_at", "callback_url", "callback_succeeded_at", "response", "metadata", "unique_id", "is_test"} {
		if _, ok := task[f]; !ok {
			t.Fatalf("task: field %q missing in %v", f, task)
		}
	}
	if _, ok := task["callback_succeeded"]; ok {
		t.Fatalf("callback_succeeded: got present before any callback, want absent")
	}
	params := task["params"].(map[string]any)
	if params["attachment"] != "a red apple" || len(params["categories"].([]any)) != 2 {
		t.Fatalf("params: got %v, want the categorization fields", params)
	}
	if task["status"] != "pending" || task["metadata"].(map[string]any)["order"] != 7.0 {
		t.Fatalf("task: got status %v metadata %v", task["status"], task["metadata"])
	}

	status, out := call(t, "POST", api.URL+"/v1/task/categorization", body)
	if status != http.StatusConflict || out["status_code"] != 409.0 || out["error"] != `unique_id "u-1" is already used by another task` {
		t.Fatalf("reused unique_id: got %d %v, want 409 saying it is already used", status, out)
	}

	steps := []struct {
		path   string
		body   any
		status string
		review any
	}{
		{"complete", map[string]any{"response": map[string]any{"category": "red"}}, "completed", nil},
		{"audit", map[string]any{"accepted": true, "comments": "good"}, "completed", "accepted"},
		{"audit", map[string]any{"accepted": false, "comments": "actually no"}, "completed", "rejected"},
		{"audit", map[string]any{"fixed": map[string]any{"response": map[string]any{"category": "green"}}}, "completed", "fixed"},
		{"recall", nil, "pending", "fixed"},
	}
	for i, s := range steps {
		got := mustCall(t, "POST", api.URL+"/v1/task/"+id+"/"+s.path, s.body)
		if got["status"] != s.status || got["customer_review_status"] != s.review {
			t.Fatalf("step %d %s: got status %v review %v, want %s %v", i, s.path, got["status"], got["customer_review_status"], s.status, s.review)
		}
		reqs := rc.waitRequests(t, i+1)
		var p Payload
		json.Unmarshal(reqs[i].Body, &p)
		if p.Status != s.status {
			t.Fatalf("callback %d (%s): got status %q, want %q", i+1, s.path, p.Status, s.status)
		}
	}
	final := mustCall(t, "GET", api.URL+"/v1/task/"+id, nil)
	if c := final["customer_review_comments"].([]any); len(c) != 2 || c[1] != "actually no" {
		t.Fatalf("customer_review_comments: got %v, want [good, actually no]", c)
	}
	prior := final["prior_responses"].([]any)
	if len(prior) != 2 || prior[0].(map[string]any)["category"] != "red" || prior[1].(map[string]any)["category"] != "green" {
		t.Fatalf("prior_responses: got %v, want [red, green]", prior)
	}
	if final["response"] != nil || final["completed_at"] != nil {
		t.Fatalf("recalled task: got response %v completed_at %v, want null", final["response"], final["completed_at"])
	}
	log.decided(t, id)

	// Wrong states and unknown tasks.
	for _, tc := range []struct {
		path string
		body any
		want int
	}{
		{"/v1/task/" + id + "/audit", map[string]any{"accepted": true}, 409},
		{"/v1/task/" + id + "/recall", nil, 409},
		{"/v1/task/" + id + "/complete", map[string]any{}, 400},
		{"/v1/task/" + id + "/complete", map[string]any{"response": "red"}, 400},
		{"/v1/task/" + id + "/complete", map[string]any{"response": map[string]any{}, "extra": 1}, 400},
		{"/v1/task/nope/complete", map[string]any{"response": map[string]any{}}, 404},
		{"/v1/task/" + id + "/cancel", nil, 200},
		{"/v1/task/" + id + "/cancel", nil, 409},
		{"/v1/task/" + id + "/complete", map[string]any{"response": map[string]any{}}, 409},
	} {
		status, out := call(t, "POST", api.URL+tc.path, tc.body)
		if status != tc.want {
			t.Fatalf("POST %s %v: got %d (%v), want %d", tc.path, tc.body, status, out, tc.want)
		}
	}
	if status, _ := call(t, "GET", api.URL+"/v1/task/nope", nil); status != 404 {
		t.Fatalf("GET unknown task: got %d, want 404", status)
	}
}

func TestAuditNeedsAcceptedOrFixed(t *testing.T) {
	e, _ := MustEngine(t, nil)
	api := MustAPI(t, e)
	id := mustCall(t, "POST", api.URL+"/v1/task/generic", map[string]any{"params": map[string]any{"q": 1}})["task_id"].(string)
	mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"a": 1}})
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{}, "accepted"},
		{map[string]any{"accepted": "yes"}, "accepted"},
		{map[string]any{"fixed": map[string]any{}}, "fixed.response"},
		{map[string]any{"fixed": 3}, "fixed"},
		{map[string]any{"accepted": true, "fixed": map[string]any{"response": map[string]any{}}}, "fixed"},
	} {
		status, out := call(t, "POST", api.URL+"/v1/task/"+id+"/audit", tc.body)
		if status != 400 || !strings.Contains(out["error"].(string), tc.field) {
			t.Fatalf("audit %v: got %d %v, want 400 naming %q", tc.body, status, out, tc.field)
		}
	}
}

func TestListTasks(t *testing.T) {
	e, _ := MustEngine(t, nil)
	api := MustAPI(t, e)
	var ids []string
	for i := range 5 {
		typ := "generic"
		body := any(map[string]any{"params": map[string]any{"i": i}})
		if i%2 == 0 {
			typ, body = "categorization", categorization("")
		}
		ids = append(ids, mustCall(t, "POST", api.URL+"/v1/task/"+typ, body)["task_id"].(string))
	}
	mustCall(t, "POST", api.URL+"/v1/task/"+ids[1]+"/complete", map[string]any{"response": map[string]any{"x": 1}})

	var seen []string
	url := api.URL + "/v1/tasks?limit=2"
	for page := 0; ; page++ {
		out := mustCall(t, "GET", url, nil)
		if out["total"] != 5.0 || out["limit"] != 2.0 || out["offset"] != float64(page*2) {
			t.Fatalf("page %d: got total %v limit %v offset %v, want 5 2 %d", page, out["total"], out["limit"], out["offset"], page*2)
		}
		for _, d := range out["docs"].([]any) {
			seen = append(seen, d.(map[string]any)["task_id"].(string))
		}
		if out["has_more"] != true {
			if out["next_token"] != nil {
				t.Fatalf("last page: got next_token %v, want null", out["next_token"])
			}
			break
		}
		url = api.URL + "/v1/tasks?limit=2&next_token=" + out["next_token"].(string)
	}
	if len(seen) != 5 || seen[0] != ids[4] || seen[4] != ids[0] {
		t.Fatalf("pages: got %v, want all 5 newest first", seen)
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"type=categorization", 3},
		{"type=generic", 2},
		{"status=completed", 1},
		{"status=pending&type=generic", 1},
		{"created_after=2000-01-01", 5},
		{"created_before=2000-01-01T00:00:00Z", 0},
		{"completed_after=2000-01-01", 1},
		{"customer_review_status=accepted", 0},
	} {
		out := mustCall(t, "GET", api.URL+"/v1/tasks?"+tc.query, nil)
		if out["total"] != float64(tc.want) || len(out["docs"].([]any)) != tc.want {
			t.Fatalf("%s: got total %v docs %d, want %d", tc.query, out["total"], len(out["docs"].([]any)), tc.want)
		}
	}
	for _, tc := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=101", "limit"}, {"limit=x", "limit"},
		{"status=done", "status"}, {"created_after=yesterday", "created_after"},
		{"updated_before=13", "updated_before"}, {"next_token=abc", "next_token"},
		{"customer_review_status=meh", "customer_review_status"},
	} {
		status, out := call(t, "GET", api.URL+"/v1/tasks?"+tc.query, nil)
		if status != 400 || !strings.Contains(out["error"].(string), tc.field) {
			t.Fatalf("%s: got %d %v, want 400 naming %q", tc.query, status, out, tc.field)
		}
	}
}

func TestProfileAndDefaultCallback(t *testing.T) {
	e, log := MustEngine(t, nil)
	api := MustAPI(t, e)
	rc := MustReceiver(t, nil)
	p := mustCall(t, "GET", api.URL+"/api/v1/profile", nil)
	if !strings.HasPrefix(p["callback_auth_key"].(string), "live_") || p["signing_secret"] != "" {
		t.Fatalf("default profile: got %v, want a live_ auth key and no secret", p)
	}
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"default_callback_url": "gopher://x"}, "default_callback_url"},
		{map[string]any{"signing_secret": "nope"}, "signing_secret"},
		{map[string]any{"signing_secret": "whsec_!!!"}, "signing_secret"},
		{map[string]any{"signing_secret": "whsec_c2hvcnQ="}, "signing_secret"},
		{map[string]any{"callback_auth_key": "a\nb"}, "callback_auth_key"},
		{map[string]any{"callback_auth_key": "a\u0001b"}, "callback_auth_key"},
		{map[string]any{"callback_auth_key": "a\u007fb"}, "callback_auth_key"},
		{[]int{1}, "body: must be a JSON object"},
		{map[string]any{"colour": "red"}, "colour"},
		{map[string]any{"callback_auth_key": 5}, "callback_auth_key"},
	} {
		status, out := call(t, "PUT", api.URL+"/api/v1/profile", tc.body)
		apiErr, _ := out["error"].(map[string]any)
		if status != 400 || apiErr == nil || apiErr["code"] != "bad_request" || !strings.Contains(apiErr["message"].(string), tc.field) {
			t.Fatalf("PUT %v: got %d %v, want 400 {error: {code, message naming %q}}", tc.body, status, out, tc.field)
		}
	}
	p = mustCall(t, "PUT", api.URL+"/api/v1/profile", map[string]any{"default_callback_url": rc.URL, "callback_auth_key": "k1"})
	if p["default_callback_url"] != rc.URL || p["callback_auth_key"] != "k1" {
		t.Fatalf("PUT: got %v", p)
	}
	// A task without callback_url goes to the default; the key is sent.
	id := mustCall(t, "POST", api.URL+"/v1/task/generic", map[string]any{})["task_id"].(string)
	mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"ok": 1}})
	if !log.decided(t, id) {
		t.Fatalf("default callback: got callback_succeeded false, want true")
	}
	r := rc.waitRequests(t, 1)[0]
	if r.Header.Get("scale-callback-auth") != "k1" || r.Header.Get("webhook-signature") != "" {
		t.Fatalf("headers: got auth %q signature %q, want k1 and no signature", r.Header.Get("scale-callback-auth"), r.Header.Get("webhook-signature"))
	}
	// With no target at all, completing sends nothing.
	mustCall(t, "PUT", api.URL+"/api/v1/profile", map[string]any{"default_callback_url": ""})
	id2 := mustCall(t, "POST", api.URL+"/v1/task/generic", map[string]any{})["task_id"].(string)
	mustCall(t, "POST", api.URL+"/v1/task/"+id2+"/complete", map[string]any{"response": map[string]any{"ok": 1}})
	if items := mustCall(t, "GET", api.URL+"/v1/task/"+id2+"/callbacks", nil)["items"].([]any); len(items) != 0 {
		t.Fatalf("no target: got %d deliveries, want 0", len(items))
	}
	if status, _ := call(t, "POST", api.URL+"/v1/task/"+id2+"/callbacks/retry", nil); status != 409 {
		t.Fatalf("retry without callback: got %d, want 409", status)
	}
}

func TestRetryNow(t *testing.T) {
	e, log := MustEngine(t, func(e *Engine) { e.Policy = Policy{Name: "one", Delays: []time.Duration{time.Millisecond}} })
	api := MustAPI(t, e)
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	id := mustCall(t, "POST", api.URL+"/v1/task/categorization", categorization(rc.URL))["task_id"].(string)
	mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"category": "red"}})
	if log.decided(t, id) {
		t.Fatalf("first delivery: got success, want failure after 2 attempts")
	}
	d := mustCall(t, "POST", api.URL+"/v1/task/"+id+"/callbacks/retry", nil)
	if d["event"] != "completed" || d["state"] != "pending" && d["state"] != "in_flight" && d["state"] != "succeeded" {
		t.Fatalf("retry: got %v", d)
	}
	ev := log.waitFor(t, "success of the retried delivery", func(ev Event) bool {
		return ev.Type == EventTypeTask && ev.TaskID == id && ev.CallbackSucceeded != nil && *ev.CallbackSucceeded
	})
	_ = ev
	reqs := rc.waitRequests(t, 3)
	if reqs[0].Header.Get("webhook-id") != reqs[2].Header.Get("webhook-id") {
		t.Fatalf("retried delivery: got webhook-id %q, want the original %q", reqs[2].Header.Get("webhook-id"), reqs[0].Header.Get("webhook-id"))
	}
	items := mustCall(t, "GET", api.URL+"/v1/task/"+id+"/callbacks", nil)["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["state"] != "failed" || items[1].(map[string]any)["state"] != "succeeded" {
		t.Fatalf("deliveries: got %v, want [failed, succeeded]", items)
	}
}

func TestAutoComplete(t *testing.T) {
	clock, _ := NewScaledClock(1e5)
	e, log := MustEngine(t, func(e *Engine) { e.Clock = clock; e.AutoComplete = time.Hour })
	api := MustAPI(t, e)
	rc := MustReceiver(t, nil)
	body := categorization(rc.URL)
	body["allow_multiple"] = true
	id := mustCall(t, "POST", api.URL+"/v1/task/categorization", body)["task_id"].(string)
	if !log.decided(t, id) {
		t.Fatal("auto-complete callback: got failure, want success")
	}
	task := mustCall(t, "GET", api.URL+"/v1/task/"+id, nil)
	cat, _ := task["response"].(map[string]any)["category"].([]any)
	if task["status"] != "completed" || len(cat) != 1 || (cat[0] != "red" && cat[0] != "green") {
		t.Fatalf("auto-completed task: got status %v response %v, want completed with [red|green]", task["status"], task["response"])
	}
	created, _ := time.Parse(time.RFC3339Nano, task["created_at"].(string))
	completed, _ := time.Parse(time.RFC3339Nano, task["completed_at"].(string))
	if d := completed.Sub(created); d < time.Hour {
		t.Fatalf("auto-complete: got %s after creation, want at least 1h", d)
	}
}
