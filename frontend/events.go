package frontend

import "time"

// The stream's events, as the UI reads them. Each has a Message method that
// sets "type" and the routing fields; the command builds them from what
// inbox and the sender report, after commit.

// CaptureEvent is the "capture" event: a capture was committed.
type CaptureEvent struct {
	Bin        string    `json:"bin"`
	ID         int64     `json:"id"`
	Kind       string    `json:"kind"` // "http" or "email"
	Method     string    `json:"method,omitempty"`
	Path       string    `json:"path"`
	Size       int64     `json:"size"`
	ReceivedAt time.Time `json:"received_at"`
	// Reply is the reply the capture got, in the capture's shape:
	// {"status": N}, {"fault": "reset"} or {"smtp_code": N}. Optional; the
	// live list shows it when present.
	Reply any `json:"reply,omitempty"`
	// Subject is an e-mail's subject, shown in the live list. Optional.
	Subject string `json:"subject,omitempty"`
}

// Message routes the event to its bin's subscribers, numbered for resume.
func (e CaptureEvent) Message() Message {
	return Message{Bin: e.Bin, ID: e.ID, Data: struct {
		Type string `json:"type"`
		CaptureEvent
	}{"capture", e}}
}

// AttemptEvent is the "attempt" event: the sender tried one delivery once.
type AttemptEvent struct {
	TaskID    string `json:"task_id"`
	Delivery  any    `json:"delivery"` // the delivery's id, as GET /v1/task/{id}/callbacks gives it
	Attempt   int    `json:"attempt"`  // 1 for the first try
	URL       string `json:"url"`
	Status    int    `json:"status,omitempty"` // the reply's status, 0 when there was none
	Error     string `json:"error,omitempty"`  // timeout, refused, reset, SMTP error...
	LatencyMS int64  `json:"latency_ms"`
}

// Message sends the event to the subscribers of every bin.
func (e AttemptEvent) Message() Message {
	return Message{Data: struct {
		Type string `json:"type"`
		AttemptEvent
	}{"attempt", e}}
}

// TaskEvent is the "task" event: a task changed status or its callback was
// decided.
type TaskEvent struct {
	TaskID            string `json:"task_id"`
	Status            string `json:"status"`
	CallbackSucceeded *bool  `json:"callback_succeeded,omitempty"` // nil until decided
}

// Message sends the event to the subscribers of every bin.
func (e TaskEvent) Message() Message {
	return Message{Data: struct {
		Type string `json:"type"`
		TaskEvent
	}{"task", e}}
}

// BinEvent is the "bin" event: a bin was created or deleted.
type BinEvent struct {
	Action string `json:"action"` // "created" or "deleted"
	Name   string `json:"name"`
}

// Message routes the event to that bin's subscribers (and to those of
// every bin).
func (e BinEvent) Message() Message {
	return Message{Bin: e.Name, Data: struct {
		Type string `json:"type"`
		BinEvent
	}{"bin", e}}
}
