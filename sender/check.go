package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// CheckOptions configure Check.
type CheckOptions struct {
	// AuthKey is the scale-callback-auth value the handler expects; ""
	// skips the checks that a wrong or missing key is refused.
	AuthKey string
	// SigningSecret is the whsec_... secret the handler verifies Standard
	// Webhooks signatures with; "" sends unsigned callbacks and skips the
	// check that a bad signature is refused.
	SigningSecret string
	Timeout       time.Duration // per callback; 0: 10 s, as the sender's default
	Type          string        // task type of the made-up tasks; "": categorization
}

// Verdicts of a check.
const (
	CheckPass = "pass"
	CheckFail = "fail"
	CheckWarn = "warn"
	CheckSkip = "skip"
)

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name    string    `json:"name"`
	Verdict string    `json:"verdict"` // pass, fail, warn, skip
	Detail  string    `json:"detail"`
	Replies []Outcome `json:"replies"` // what the handler answered to each callback of the check
}

// Check tries an integrator's callback handler at url the way a hostile
// world would, and says what it handled: the callbacks of every event; a
// delivery sent twice (as at-least-once senders do); an audit and a recall
// that arrive before the completion they follow; a task with fields the
// handler has never seen; a missing or wrong auth key and a bad signature
// (which it must refuse); and how long it takes to answer (a handler slower
// than the sender's timeout gets retries, that is duplicates). Every
// callback is sent once, without retries. Errors are bad arguments; what
// the handler did is in the results.
func Check(ctx context.Context, url string, opts CheckOptions) ([]CheckResult, error) {
	target, err := parseTarget(url)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if target.Email != "" {
		return nil, fmt.Errorf("check: %w: checks an HTTP handler; e-mail targets have none", ErrBadTarget)
	}
	if opts.SigningSecret != "" {
		if _, err := decodeSecret(opts.SigningSecret); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
	}
	if !printableASCII(opts.AuthKey) {
		return nil, fmt.Errorf("check: %w: auth key must be printable ASCII", ErrInvalid)
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("check: %w: timeout %s is negative", ErrInvalid, opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	c := &checker{ctx: ctx, url: target.URL, opts: opts, tr: newTransport(opts.Timeout, "", 2)}
	defer c.tr.close()
	if _, err := sampleTask(EventCompleted, opts.Type, target.URL, time.Now()); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}

	var results []CheckResult
	add := func(r CheckResult) { results = append(results, r) }

	for _, event := range TriggerEvents() {
		add(c.accepts(event+" callback accepted", c.callback(event, "", nil)))
	}
	dup := c.callback(EventCompleted, "", nil)
	r := c.accepts("duplicate delivery acknowledged both times", dup, dup)
	if r.Verdict == CheckPass {
		r.Detail += fmt.Sprintf("; it must act once: both carried webhook-id and Idempotency-Key %s", dup.WebhookID)
	}
	add(r)
	id := newID(12)
	add(c.accepts("audit before its completion accepted", c.callback(EventAudit, id, nil), c.callback(EventCompleted, id, nil)))
	id = newID(12)
	add(c.accepts("recall before its completion accepted", c.callback(EventRecall, id, nil), c.callback(EventCompleted, id, nil)))
	add(c.accepts("unknown fields tolerated", c.callback(EventCompleted, "", map[string]any{
		"callback_delivery": 1, "labels": []string{"new"}, "review": map[string]any{"level": 2},
	})))

	if opts.AuthKey == "" {
		add(CheckResult{Name: "missing auth key refused", Verdict: CheckSkip, Detail: "no --auth-key given: the key the handler expects is unknown"})
		add(CheckResult{Name: "wrong auth key refused", Verdict: CheckSkip, Detail: "no --auth-key given"})
	} else {
		m := c.callback(EventCompleted, "", nil)
		m.AuthKey = ""
		add(c.refuses("missing auth key refused", m, "a callback without scale-callback-auth"))
		m = c.callback(EventCompleted, "", nil)
		m.AuthKey = "wrong-" + newID(8)
		add(c.refuses("wrong auth key refused", m, "a callback with a wrong scale-callback-auth"))
	}
	if opts.SigningSecret == "" {
		add(CheckResult{Name: "bad signature refused", Verdict: CheckSkip, Detail: "no --signing-secret given"})
	} else {
		m := c.callback(EventCompleted, "", nil)
		m.Secret = NewSigningSecret() // a valid signature, by another secret
		add(c.refuses("bad signature refused", m, "a callback whose webhook-signature does not verify"))
	}
	add(c.slowest(results))
	return results, nil
}

type checker struct {
	ctx  context.Context
	url  string
	opts CheckOptions
	tr   *transport
}

// callback makes the message of an event for a made-up task (of id, when
// given), with extra fields added to its task object.
func (c *checker) callback(event, id string, extra map[string]any) message {
	t, _ := sampleTask(event, c.opts.Type, c.url, time.Now().UTC())
	if id != "" {
		t.TaskID = id
	}
	t.Instruction = "Sample task sent by callbin check"
	payload, _ := payloadFor(t)
	if extra != nil {
		var p map[string]any
		_ = json.Unmarshal(payload, &p)
		task := p["task"].(map[string]any)
		for k, v := range extra {
			task[k] = v
		}
		p["schema_version"] = 2
		payload, _ = json.Marshal(p)
	}
	return message{TaskID: t.TaskID, Event: event, WebhookID: "msg_" + newID(12), Payload: payload,
		AuthKey: c.opts.AuthKey, Secret: c.opts.SigningSecret}
}

// accepts sends ms in order; the check passes when each got a 2xx.
func (c *checker) accepts(name string, ms ...message) CheckResult {
	r := CheckResult{Name: name, Verdict: CheckPass}
	var got []string
	for _, m := range ms {
		out := c.tr.send(c.ctx, Target{URL: c.url}, m)
		r.Replies = append(r.Replies, out)
		got = append(got, describe(out))
		if !out.OK && r.Verdict == CheckPass {
			r.Verdict = CheckFail
		}
	}
	r.Detail = strings.Join(got, ", ")
	if r.Verdict == CheckFail {
		r.Detail += ": a hosted sender retries this for up to 24 hours"
	}
	return r
}

// refuses sends m, which the handler must not accept: any 4xx passes, a
// 2xx fails (it trusted what it should not), anything else warns.
func (c *checker) refuses(name string, m message, what string) CheckResult {
	out := c.tr.send(c.ctx, Target{URL: c.url}, m)
	r := CheckResult{Name: name, Replies: []Outcome{out}, Detail: describe(out)}
	switch {
	case out.OK:
		r.Verdict = CheckFail
		r.Detail += ": it accepted " + what + ", so a forged callback would be trusted"
	case out.Status >= 400 && out.Status < 500:
		r.Verdict = CheckPass
	default:
		r.Verdict = CheckWarn
		r.Detail += ": refused, but not with a 4xx (a 5xx or a failure is retried by the sender)"
	}
	return r
}

// slowest looks at every answer so far: one slower than the sender's
// timeout is a failure (the sender gives up and retries), one slower than
// a fifth of it a warning.
func (c *checker) slowest(results []CheckResult) CheckResult {
	var max time.Duration
	n := 0
	for _, r := range results {
		for _, o := range r.Replies {
			n++
			if o.Latency > max {
				max = o.Latency
			}
		}
	}
	r := CheckResult{Name: "answers quickly", Verdict: CheckPass,
		Detail: fmt.Sprintf("slowest of %d answers: %s (callbacks time out after %s)", n, roundLatency(max), c.opts.Timeout)}
	switch {
	case max >= c.opts.Timeout:
		r.Verdict = CheckFail
		r.Detail += ": the sender gives up and retries, so the handler gets duplicates; answer first, work after"
	case max > c.opts.Timeout/5:
		r.Verdict = CheckWarn
		r.Detail += ": close to the timeout; answer first, work after"
	}
	return r
}

func describe(o Outcome) string {
	switch {
	case o.Status != 0:
		return fmt.Sprintf("%d in %s", o.Status, roundLatency(o.Latency))
	default:
		return fmt.Sprintf("%s (%s) after %s", o.Error, o.Class, roundLatency(o.Latency))
	}
}

func roundLatency(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}
