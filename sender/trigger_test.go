package sender

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestTrigger(t *testing.T) {
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", "yes")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"got":true}`))
	})
	secret := NewSigningSecret()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		event, status, review string
	}{
		{EventCompleted, StatusCompleted, ""},
		{EventError, StatusError, ""},
		{EventAudit, StatusCompleted, ReviewAccepted},
		{EventRecall, StatusPending, ""},
	} {
		res, err := Trigger(t.Context(), tc.event, rc.URL, TriggerOptions{AuthKey: "k", SigningSecret: secret})
		if err != nil {
			t.Fatalf("%s: %v", tc.event, err)
		}
		if !res.OK || res.Status != 202 || string(res.ReplyBody) != `{"got":true}` {
			t.Fatalf("%s: got ok %v status %d body %q, want 202 {\"got\":true}", tc.event, res.OK, res.Status, res.ReplyBody)
		}
		req := rc.waitRequests(t, i+1)[i]
		var p Payload
		if err := json.Unmarshal(req.Body, &p); err != nil {
			t.Fatal(err)
		}
		review := ""
		if p.Task.CustomerReviewStatus != nil {
			review = *p.Task.CustomerReviewStatus
		}
		if p.Status != tc.status || p.Task.Status != tc.status || review != tc.review || p.TaskID != p.Task.TaskID {
			t.Fatalf("%s: got status %q task status %q review %q, want %q %q", tc.event, p.Status, p.Task.Status, review, tc.status, tc.review)
		}
		if req.Header.Get("scale-callback-auth") != "k" {
			t.Fatalf("%s: got auth %q, want k", tc.event, req.Header.Get("scale-callback-auth"))
		}
		if err := wh.Verify(req.Body, req.Header); err != nil {
			t.Fatalf("%s: reference library: %v", tc.event, err)
		}
	}
	// The error sample is a creation refused the way the engine refuses
	// one: its params and its error agree.
	for _, tc := range []struct{ typ, want string }{{TypeCategorization, "categories"}, {TypeGeneric, "metadata"}} {
		res, err := Trigger(t.Context(), EventError, rc.URL, TriggerOptions{Type: tc.typ})
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Response struct{ Error string }
			Task     struct {
				Params   map[string]json.RawMessage
				Metadata json.RawMessage
			}
		}
		if err := json.Unmarshal(res.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.Response.Error, tc.want+":") {
			t.Errorf("%s error sample: error %q, want one about %s", tc.typ, p.Response.Error, tc.want)
		}
		if tc.typ == TypeCategorization {
			if err := validateCategorization(p.Task.Params); err == nil || err.Error() != p.Response.Error {
				t.Errorf("categorization error sample: params %s give %v, the payload says %q", res.Payload, err, p.Response.Error)
			}
		} else if string(p.Task.Metadata) != "{}" {
			t.Errorf("generic error sample: metadata %s, want {} (it was refused)", p.Task.Metadata)
		}
	}
	// A receiver that fails is a result, not an error.
	bad := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	res, err := Trigger(t.Context(), EventCompleted, bad.URL, TriggerOptions{Timeout: time.Second})
	if err != nil || res.OK || res.Status != 500 || res.Class != ClassHTTPStatus {
		t.Fatalf("failing receiver: got %+v %v, want a 500 result", res.Outcome, err)
	}
	for _, tc := range []struct {
		event, to string
		opts      TriggerOptions
		want      error
	}{
		{"shipped", rc.URL, TriggerOptions{}, ErrUnknownEvent},
		{EventCompleted, "ftp://x", TriggerOptions{}, ErrBadTarget},
		{EventCompleted, rc.URL, TriggerOptions{SigningSecret: "nope"}, ErrInvalid},
		{EventCompleted, rc.URL, TriggerOptions{Type: "video"}, ErrUnknownType},
		{EventCompleted, rc.URL, TriggerOptions{Timeout: -1}, ErrInvalid},
		{EventCompleted, rc.URL, TriggerOptions{AuthKey: "a\x01b"}, ErrInvalid},
	} {
		if _, err := Trigger(t.Context(), tc.event, tc.to, tc.opts); !errors.Is(err, tc.want) {
			t.Fatalf("Trigger(%q, %q, %+v): got %v, want %v", tc.event, tc.to, tc.opts, err, tc.want)
		}
	}
}

func TestTriggerEmail(t *testing.T) {
	fake, addr := MustSMTP(t, nil)
	res, err := Trigger(t.Context(), EventRecall, "mailto:ci@example.test", TriggerOptions{SMTPRelay: addr})
	if err != nil || !res.OK || res.Status != 250 {
		t.Fatalf("e-mail trigger: got %+v %v, want accepted (250)", res.Outcome, err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.bodies) != 1 || string(fake.bodies[0]) != string(res.Payload) {
		t.Fatalf("e-mail body: got %d messages, want 1 with the payload", len(fake.bodies))
	}
}
