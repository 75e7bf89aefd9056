package smtpsink_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/smtpsink"
)

// outcome is what go-smtp's client saw of one command.
type outcome struct {
	code   int  // the SMTP code of the error, 0 for success or a non-SMTP error
	failed bool // any error
}

func seen(err error) outcome { return outcome{code: smtpCode(err), failed: err != nil} }

// alive reports whether the connection still answers.
func alive(c *smtp.Client) bool { return c.Noop() == nil }

// TestScriptedRcpt: a reply scripted at RCPT is exactly what go-smtp's
// client sees, and each refused or dropped attempt is recorded with its
// reply and envelope.
func TestScriptedRcpt(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		rcpt      outcome // what Rcpt returned
		alive     bool    // the connection answers after
		recorded  *inbox.Reply
		enhanced  smtp.EnhancedCode
		message   string
		delivered bool // the message then goes through
	}{
		{name: "451", script: `steps: [{smtp: {code: 451, message: "4.7.1 Greylisted, try later"}}]`,
			rcpt: outcome{451, true}, alive: true, recorded: &inbox.Reply{SMTPCode: 451},
			enhanced: smtp.EnhancedCode{4, 7, 1}, message: "Greylisted, try later"},
		{name: "550", script: `steps: [{smtp: {code: 550}}]`,
			rcpt: outcome{550, true}, alive: true, recorded: &inbox.Reply{SMTPCode: 550},
			enhanced: smtp.EnhancedCode{5, 0, 0}, message: "Requested action not taken: mailbox unavailable"},
		{name: "421 closes", script: `steps: [{smtp: {code: 421}}]`,
			rcpt: outcome{421, true}, alive: false, recorded: &inbox.Reply{SMTPCode: 421}},
		{name: "421 and close", script: `steps: [{smtp: {code: 421, message: "4.3.2 Shutting down"}, fault: close}]`,
			rcpt: outcome{421, true}, alive: false, recorded: &inbox.Reply{SMTPCode: 421, Fault: "close"},
			enhanced: smtp.EnhancedCode{4, 3, 2}, message: "Shutting down"},
		{name: "close", script: `steps: [{fault: close}]`,
			rcpt: outcome{0, true}, alive: false, recorded: &inbox.Reply{Fault: "close"}},
		{name: "reset", script: `steps: [{fault: reset}]`,
			rcpt: outcome{0, true}, alive: false, recorded: &inbox.Reply{Fault: "reset"}},
		{name: "garbage", script: `steps: [{fault: garbage}]`,
			rcpt: outcome{0, true}, alive: false, recorded: &inbox.Reply{Fault: "garbage"}},
		{name: "a delay, then accepted", script: `steps: [{delay: 30s}]`,
			rcpt: outcome{0, false}, alive: true, delivered: true},
		{name: "slow, then accepted", script: `steps: [{fault: slow}]`,
			rcpt: outcome{0, false}, alive: true, delivered: true},
		{name: "2xx scripted at RCPT accepts", script: `steps: [{smtp: {code: 250, message: "fine"}}]`,
			rcpt: outcome{0, false}, alive: true, delivered: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waits sleeps
			srv := MustServe(t, &smtpsink.Server{Sleep: waits.Sleep})
			setScript(t, srv, "scripted", tt.script)
			c := MustDial(t, srv)
			if err := c.Mail("sender@example.com", nil); err != nil {
				t.Fatal(err)
			}
			err := c.Rcpt("scripted@callbin.local", nil)
			if got := seen(err); got != tt.rcpt {
				t.Fatalf("RCPT: got %v (%+v), want %+v", err, got, tt.rcpt)
			}
			var se *smtp.SMTPError
			if tt.message != "" && (!errors.As(err, &se) || se.Message != tt.message || se.EnhancedCode != tt.enhanced) {
				t.Errorf("RCPT: got %#v, want %v %q", err, tt.enhanced, tt.message)
			}
			if got := alive(c); got != tt.alive {
				t.Errorf("connection alive after: got %v, want %v", got, tt.alive)
			}
			if tt.delivered {
				w, err := c.Data()
				if err == nil {
					w.Write([]byte("Subject: s\r\n\r\nx\r\n"))
					err = w.Close()
				}
				if err != nil {
					t.Fatalf("DATA: got %v, want 250", err)
				}
			}
			caps := captures(t, srv.Store, "scripted")
			switch {
			case tt.recorded != nil:
				if len(caps) != 1 {
					t.Fatalf("got %d captures, want the refused attempt", len(caps))
				}
				got := caps[0]
				if got.Method != smtpsink.MethodRcpt || got.Reply != *tt.recorded || len(got.Body) != 0 ||
					got.Email.MailFrom != "sender@example.com" || !slices.Equal(got.Email.RcptTo, []string{"scripted@callbin.local"}) ||
					got.Path != "scripted@callbin.local" {
					t.Errorf("got %s %s reply %+v envelope %q -> %q, want RCPT with %+v and the envelope", got.Method, got.Path, got.Reply, got.Email.MailFrom, got.Email.RcptTo, *tt.recorded)
				}
			case tt.delivered:
				if len(caps) != 1 || caps[0].Method != smtpsink.MethodData || caps[0].Reply != (inbox.Reply{SMTPCode: 250}) {
					t.Errorf("got %d captures, want the delivered message only", len(caps))
				}
			}
			if tt.name == "a delay, then accepted" && !slices.Equal(waits.got(), []time.Duration{30 * time.Second}) {
				t.Errorf("got waits %v, want [30s]", waits.got())
			}
			if tt.name == "slow, then accepted" {
				if n := len(waits.got()); n < 20 {
					t.Errorf("got %d pauses in the slow reply, want one between each byte", n)
				}
			}
		})
	}
}

// TestScriptedHang: a hang at RCPT never answers; the client's own timeout
// ends it, and the attempt is recorded.
func TestScriptedHang(t *testing.T) {
	srv := MustServe(t, nil)
	setScript(t, srv, "hung", `steps: [{fault: hang}]`)
	c := MustDial(t, srv)
	c.CommandTimeout = 300 * time.Millisecond
	if err := c.Mail("a@example.com", nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.Rcpt("hung@callbin.local", nil)
	if err == nil || smtpCode(err) != 0 {
		t.Fatalf("RCPT: got %v, want the client's timeout", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("RCPT failed after %s, want the client to wait its timeout", d)
	}
	// The capture is committed before the hang begins, but nothing orders
	// that commit before the client's timer: wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := srv.Store.WaitCapture(ctx, inbox.CaptureFilter{Bin: "hung"}); err != nil {
		t.Fatalf("the hung attempt was not recorded: %v", err)
	}
	if caps := captures(t, srv.Store, "hung"); len(caps) != 1 || caps[0].Reply != (inbox.Reply{Fault: "hang"}) {
		t.Errorf("got %d captures, want the hung attempt", len(caps))
	}
}

// TestScriptedData: a reply scripted at DATA comes after the whole message
// was read and stored, with the reply recorded.
func TestScriptedData(t *testing.T) {
	const msg = "Subject: scripted\r\n\r\nbody\r\n"
	tests := []struct {
		name     string
		script   string
		data     outcome
		alive    bool
		recorded inbox.Reply
		waits    []time.Duration
	}{
		{"451", `steps: [{smtp: {code: 451, at: data}}]`, outcome{451, true}, true, inbox.Reply{SMTPCode: 451}, nil},
		{"550", `steps: [{smtp: {code: 550, message: "5.7.1 Rejected", at: data}}]`, outcome{550, true}, true, inbox.Reply{SMTPCode: 550}, nil},
		{"421 closes", `steps: [{smtp: {code: 421, at: data}}]`, outcome{421, true}, false, inbox.Reply{SMTPCode: 421}, nil},
		{"554 and close", `steps: [{smtp: {code: 554, at: data}, fault: close}]`, outcome{554, true}, false, inbox.Reply{SMTPCode: 554, Fault: "close"}, nil},
		{"250 and close", `steps: [{smtp: {code: 250, at: data}, fault: close}]`, outcome{0, false}, false, inbox.Reply{SMTPCode: 250, Fault: "close"}, nil},
		{"reset", `steps: [{smtp: {code: 451, at: data}, fault: reset}]`, outcome{0, true}, false, inbox.Reply{SMTPCode: 451, Fault: "reset"}, nil},
		{"a delay", `steps: [{smtp: {code: 250, at: data}, delay: 45s}]`, outcome{0, false}, true, inbox.Reply{SMTPCode: 250}, []time.Duration{45 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waits sleeps
			srv := MustServe(t, &smtpsink.Server{Sleep: waits.Sleep})
			setScript(t, srv, "scripted", tt.script)
			c := MustDial(t, srv)
			_, err := send(c, "a@example.com", []string{"scripted@callbin.local"}, msg)
			if tt.recorded.Fault == "reset" && err != nil {
				// Whether the line before the reset reaches the client
				// is up to the network.
				err = errors.New("connection reset")
			}
			if got := seen(err); got != tt.data {
				t.Fatalf("DATA: got %v (%+v), want %+v", err, got, tt.data)
			}
			if got := alive(c); got != tt.alive {
				t.Errorf("connection alive after: got %v, want %v", got, tt.alive)
			}
			caps := captures(t, srv.Store, "scripted")
			if len(caps) != 1 {
				t.Fatalf("got %d captures, want 1", len(caps))
			}
			if got := caps[0]; got.Method != smtpsink.MethodData || string(got.Body) != msg || got.Reply != tt.recorded || got.Email.Subject != "scripted" {
				t.Errorf("got %s %q reply %+v, want DATA with the message and %+v", got.Method, got.Body, got.Reply, tt.recorded)
			}
			if !slices.Equal(waits.got(), tt.waits) {
				t.Errorf("got waits %v, want %v", waits.got(), tt.waits)
			}
		})
	}
}

// TestBackoff: a sender that retries on 451 leaves one capture per attempt,
// each with its reply and time, so that its backoff can be checked; the
// script's position is kept across connections.
func TestBackoff(t *testing.T) {
	srv := MustServe(t, nil)
	script, err := inbox.ParseScript([]byte("greylist")) // 451 at RCPT twice, then accept
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Scripts.Set(context.Background(), "retry", script); err != nil {
		t.Fatal(err)
	}
	backoff := []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond}
	var sawCodes []int
	var saw []string
	for _, wait := range backoff {
		time.Sleep(wait)
		c := MustDial(t, srv)
		_, err := send(c, "sender@example.com", []string{"retry@callbin.local"}, "Subject: try\r\n\r\nx\r\n")
		sawCodes = append(sawCodes, smtpCode(err))
		if err != nil {
			saw = append(saw, err.Error())
		}
		if err != nil && smtpCode(err) != 451 {
			t.Fatalf("attempt: got %v, want 451 or success", err)
		}
		c.Quit()
	}
	if want := []int{451, 451, 0}; !slices.Equal(sawCodes, want) {
		t.Fatalf("sender saw %v, want %v", sawCodes, want)
	}
	for _, s := range saw {
		if !strings.Contains(s, "Greylisted, please try again later") {
			t.Errorf("sender saw %q, want the scripted text", s)
		}
	}
	caps := captures(t, srv.Store, "retry")
	var codes []int
	for _, c := range caps {
		codes = append(codes, c.Reply.SMTPCode)
	}
	if want := []int{451, 451, 250}; !slices.Equal(codes, want) {
		t.Fatalf("recorded %v, want %v", codes, want)
	}
	for i := 1; i < len(caps); i++ {
		if gap := caps[i].ReceivedAt.Sub(caps[i-1].ReceivedAt); gap < backoff[i] {
			t.Errorf("attempt %d came %s after the one before, want at least the sender's %s", i+1, gap, backoff[i])
		}
	}
}

// TestOneStepPerAttempt: two addresses of one bin in one message are one
// attempt (one step, one capture); bins with different DATA scripts get
// one reply, the first bin's, and each records it.
func TestOneStepPerAttempt(t *testing.T) {
	srv := MustServe(t, nil)
	setScript(t, srv, "one", `steps: [{smtp: {code: 452, at: data}}, {}]`)
	setScript(t, srv, "two", `steps: [{smtp: {code: 554, at: data}}]`)
	c := MustDial(t, srv)
	_, err := send(c, "a@example.com", []string{"one@a.example", "ONE@b.example", "plain@x", "two@x"}, "Subject: s\r\n\r\nx\r\n")
	if smtpCode(err) != 452 {
		t.Fatalf("DATA: got %v, want 452 (the first bin's script)", err)
	}
	if _, err := send(c, "a@example.com", []string{"one@a.example"}, "Subject: s\r\n\r\nx\r\n"); err != nil {
		t.Fatalf("second attempt: got %v, want 250 (the script's second step)", err)
	}
	for bin, want := range map[string][]int{"one": {452, 250}, "plain": {452}, "two": {452}} {
		var got []int
		for _, c := range captures(t, srv.Store, bin) {
			got = append(got, c.Reply.SMTPCode)
		}
		if !slices.Equal(got, want) {
			t.Errorf("bin %s recorded %v, want %v", bin, got, want)
		}
	}
	if caps := captures(t, srv.Store, "one"); !slices.Equal(caps[0].Email.RcptTo, []string{"one@a.example", "ONE@b.example"}) {
		t.Errorf("got rcpt_to %q, want both addresses", caps[0].Email.RcptTo)
	}
}

// TestScriptedDelayRealClock: a scripted delay holds the reply for real
// (a short one), after the attempt was recorded.
func TestScriptedDelayRealClock(t *testing.T) {
	srv := MustServe(t, nil)
	setScript(t, srv, "late", `steps: [{smtp: {code: 451}, delay: 300ms}]`)
	c := MustDial(t, srv)
	c.Mail("a@example.com", nil)
	start := time.Now()
	err := c.Rcpt("late@callbin.local", nil)
	if smtpCode(err) != 451 {
		t.Fatalf("got %v, want 451", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("the 451 came after %s, want at least 300ms", d)
	}
	if caps := captures(t, srv.Store, "late"); len(caps) != 1 || caps[0].ReceivedAt.Sub(start) > 250*time.Millisecond {
		t.Errorf("got %d captures, want the attempt recorded when it came, before the delay", len(caps))
	}
}
