package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// TriggerOptions configure Trigger.
type TriggerOptions struct {
	AuthKey       string        // scale-callback-auth header; "" sends none
	SigningSecret string        // whsec_... to sign with Standard Webhooks headers; "" unsigned
	SMTPRelay     string        // host:port for e-mail targets
	Timeout       time.Duration // 0: 10 s
	Type          string        // task type of the sample task; "": categorization
}

// TriggerResult is what the receiver answered to a triggered callback.
type TriggerResult struct {
	Event   string          `json:"event"`
	Target  string          `json:"target"`
	Payload json.RawMessage `json:"payload"`
	Outcome
}

// TriggerEvents are the events Trigger can send.
func TriggerEvents() []string {
	return []string{EventCompleted, EventError, EventAudit, EventRecall}
}

// Trigger sends one callback of event (completed, error, audit, recall) for
// a made-up task to an http(s) URL or e-mail address, once, without the
// queue, and returns what the receiver answered. A failed delivery is
// reported in the result, not as an error; errors are bad arguments.
func Trigger(ctx context.Context, event, to string, opts TriggerOptions) (TriggerResult, error) {
	target, err := parseTarget(to)
	if err != nil {
		return TriggerResult{}, fmt.Errorf("trigger: %w", err)
	}
	if opts.SigningSecret != "" {
		if _, err := decodeSecret(opts.SigningSecret); err != nil {
			return TriggerResult{}, fmt.Errorf("trigger: %w", err)
		}
	}
	if target.Email != "" {
		if err := CheckRelay(opts.SMTPRelay); err != nil {
			return TriggerResult{}, fmt.Errorf("trigger: %w", err)
		}
	}
	if !printableASCII(opts.AuthKey) {
		return TriggerResult{}, fmt.Errorf("trigger: %w: auth key must be printable ASCII", ErrInvalid)
	}
	if opts.Timeout < 0 {
		return TriggerResult{}, fmt.Errorf("trigger: %w: timeout %s is negative", ErrInvalid, opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	t, err := sampleTask(event, opts.Type, target.String(), time.Now().UTC())
	if err != nil {
		return TriggerResult{}, fmt.Errorf("trigger: %w", err)
	}
	payload, err := payloadFor(t)
	if err != nil {
		return TriggerResult{}, fmt.Errorf("trigger: %w", err)
	}
	tr := newTransport(opts.Timeout, opts.SMTPRelay, 1)
	defer tr.close()
	out := tr.send(ctx, target, message{TaskID: t.TaskID, Event: event, WebhookID: "msg_" + newID(12),
		Payload: payload, AuthKey: opts.AuthKey, Secret: opts.SigningSecret})
	return TriggerResult{Event: event, Target: target.String(), Payload: payload, Outcome: out}, nil
}

// sampleTask makes the task a callback of event would carry.
func sampleTask(event, typ, target string, now time.Time) (*Task, error) {
	if typ == "" {
		typ = TypeCategorization
	}
	params := json.RawMessage(`{"attachment_type":"text","attachment":"The sky is clear today.","categories":["weather","sports","politics"]}`)
	response := json.RawMessage(`{"category":"weather"}`)
	switch typ {
	case TypeCategorization:
	case TypeGeneric:
		params = json.RawMessage(`{"question":"Is this a sample?"}`)
		response = json.RawMessage(`{"result":"ok"}`)
	default:
		return nil, fmt.Errorf("%w %q: use %s or %s", ErrUnknownType, truncate(typ, 64), TypeCategorization, TypeGeneric)
	}
	created := now.Add(-2 * time.Minute)
	completed := now.Add(-time.Minute)
	t := &Task{
		TaskID: newID(12), Type: typ, Instruction: "Sample task sent by callbin trigger", Params: params,
		CreatedAt: created, UpdatedAt: now, CallbackURL: &target, Metadata: json.RawMessage(`{"triggered":true}`),
		IsTest: true,
	}
	switch event {
	case EventCompleted:
		t.Status, t.Response, t.CompletedAt = StatusCompleted, response, &completed
	case EventError:
		// A creation refused the way the engine refuses one: the params
		// and the error agree.
		var cause error
		if typ == TypeCategorization {
			t.Params = json.RawMessage(`{"attachment_type":"text","attachment":"The sky is clear today.","categories":[]}`)
			var p map[string]json.RawMessage
			_ = json.Unmarshal(t.Params, &p)
			cause = validateCategorization(p)
		}
		if cause == nil {
			t.Metadata = json.RawMessage("{}")
			cause = fieldErr("metadata", "must be a JSON object")
		}
		t.Status = StatusError
		t.Response, _ = json.Marshal(map[string]string{"error": cause.Error()})
		t.CompletedAt = nil
	case EventAudit:
		review := ReviewAccepted
		t.Status, t.Response, t.CompletedAt = StatusCompleted, response, &completed
		t.CustomerReviewStatus = &review
		t.CustomerReviewComments = []string{"Looks right."}
	case EventRecall:
		t.Status, t.Response = StatusPending, json.RawMessage("null")
		t.PriorResponses = []json.RawMessage{response}
	default:
		return nil, fmt.Errorf("%w %q: use completed, error, audit or recall", ErrUnknownEvent, truncate(event, 32))
	}
	return t, nil
}
