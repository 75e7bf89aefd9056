package sender

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// smtpFake is a go-smtp server on 127.0.0.1:0 that records messages and
// answers RCPT for the n-th session with rcpt(n).
type smtpFake struct {
	mu       sync.Mutex
	sessions int
	msgs     []*mail.Message
	bodies   [][]byte
	rcpt     func(n int) error
}

func (f *smtpFake) NewSession(*smtp.Conn) (smtp.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions++
	return &fakeSession{f: f, n: f.sessions}, nil
}

type fakeSession struct {
	f *smtpFake
	n int
}

func (s *fakeSession) Reset()                               {}
func (s *fakeSession) Logout() error                        { return nil }
func (s *fakeSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.f.rcpt != nil {
		return s.f.rcpt(s.n)
	}
	return nil
}

func (s *fakeSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		return err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.msgs = append(s.f.msgs, m)
	s.f.bodies = append(s.f.bodies, body)
	return nil
}

func MustSMTP(tb testing.TB, rcpt func(n int) error) (*smtpFake, string) {
	tb.Helper()
	f := &smtpFake{rcpt: rcpt}
	srv := smtp.NewServer(f)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	tb.Cleanup(func() { srv.Close(); <-done })
	return f, l.Addr().String()
}

func TestEmailCallbacks(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		rcpt     func(n int) error
		attempts int
		ok       bool
		codes    []int
	}{
		{"accepted", "hook@example.test", nil, 1, true, []int{250}},
		{"mailto", "mailto:hook@example.test", nil, 1, true, []int{250}},
		{"4xx then accepted", "hook@example.test", func(n int) error {
			if n <= 2 {
				return &smtp.SMTPError{Code: 451, Message: "try later"}
			}
			return nil
		}, 3, true, []int{451, 451, 250}},
		{"5xx is final", "hook@example.test", func(int) error {
			return &smtp.SMTPError{Code: 550, Message: "no such user"}
		}, 1, false, []int{550}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, addr := MustSMTP(t, tc.rcpt)
			clock, _ := NewScaledClock(1e5)
			e, log := MustEngine(t, func(e *Engine) { e.Clock = clock; e.SMTPRelay = addr })
			api := MustAPI(t, e)
			secret := mustCall(t, "PUT", api.URL+"/api/v1/profile", map[string]any{"signing_secret": "generate"})["signing_secret"].(string)
			id := mustCall(t, "POST", api.URL+"/v1/task/categorization", categorization(tc.target))["task_id"].(string)
			mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"category": "red"}})
			if got := log.decided(t, id); got != tc.ok {
				t.Fatalf("callback_succeeded: got %v, want %v", got, tc.ok)
			}
			ds, err := e.Deliveries(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds[0].Attempts) != tc.attempts {
				t.Fatalf("attempts: got %d, want %d", len(ds[0].Attempts), tc.attempts)
			}
			for i, a := range ds[0].Attempts {
				if a.Status == nil || *a.Status != tc.codes[i] {
					t.Fatalf("attempt %d: got code %v, want %d", i+1, a.Status, tc.codes[i])
				}
			}
			if ds[0].Target != "mailto:hook@example.test" {
				t.Fatalf("target: got %q, want mailto:hook@example.test", ds[0].Target)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if !tc.ok {
				if len(fake.msgs) != 0 {
					t.Fatalf("messages: got %d, want 0", len(fake.msgs))
				}
				return
			}
			if len(fake.msgs) != 1 {
				t.Fatalf("messages: got %d, want 1", len(fake.msgs))
			}
			m, body := fake.msgs[0], fake.bodies[0]
			var p Payload
			if err := json.Unmarshal(body, &p); err != nil || p.TaskID != id || p.Status != StatusCompleted {
				t.Fatalf("body: got %q (%v), want the JSON payload of %s", body, err, id)
			}
			if got, want := m.Header.Get("Subject"), "callbin callback: completed "+id+" (completed)"; got != want {
				t.Fatalf("Subject: got %q, want %q", got, want)
			}
			if got := m.Header.Get("To"); got != "<hook@example.test>" {
				t.Fatalf("To: got %q", got)
			}
			if got := m.Header.Get("scale-callback-auth"); got != e.Profile().CallbackAuthKey {
				t.Fatalf("scale-callback-auth: got %q, want %q", got, e.Profile().CallbackAuthKey)
			}
			wh, _ := standardwebhooks.NewWebhook(secret)
			if err := wh.Verify(body, map[string][]string{
				"Webhook-Id":        {m.Header.Get("webhook-id")},
				"Webhook-Timestamp": {m.Header.Get("webhook-timestamp")},
				"Webhook-Signature": {m.Header.Get("webhook-signature")},
			}); err != nil {
				t.Fatalf("signature of the e-mail: %v", err)
			}
		})
	}
}

func TestEmailWithoutRelay(t *testing.T) {
	e, log := MustEngine(t, nil)
	api := MustAPI(t, e)
	id := mustCall(t, "POST", api.URL+"/v1/task/categorization", categorization("hook@example.test"))["task_id"].(string)
	mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"category": "red"}})
	ev := log.attempt(t, id, 1)
	if ev.ErrorClass != ClassConfig || ev.State != "pending" {
		t.Fatalf("attempt: got class %q state %q, want %q pending (retried: the relay may be set on restart)", ev.ErrorClass, ev.State, ClassConfig)
	}
}

func TestEmailRelayDown(t *testing.T) {
	// Nothing listens on port 1: the relay refuses every connection.
	e, log := MustEngine(t, func(e *Engine) { e.SMTPRelay = "127.0.0.1:1" })
	api := MustAPI(t, e)
	id := mustCall(t, "POST", api.URL+"/v1/task/categorization", categorization("hook@example.test"))["task_id"].(string)
	mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"category": "red"}})
	ev := log.attempt(t, id, 1)
	if ev.ErrorClass != ClassRefused || ev.State != "pending" {
		t.Fatalf("attempt: got class %q state %q, want %q pending", ev.ErrorClass, ev.State, ClassRefused)
	}
}
