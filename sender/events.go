package sender

import (
	"encoding/json"
	"time"
)

// Publisher receives live events after they are committed. Publish must not
// block (a hub drops or skips slow clients); it is called from the engine's
// goroutines.
type Publisher interface {
	Publish(Event)
}

// Event types.
const (
	EventTypeAttempt = "attempt"
	EventTypeTask    = "task"
)

// Event is a live event: an attempt finished, or a task changed.
//
// As JSON, an attempt event is {type, task_id, delivery, event, attempt, url,
// status (HTTP status or SMTP code, when there was one), error, error_class,
// latency_ms, at, state, next_attempt_at} and a task event is {type, task_id,
// status (task status), callback_succeeded, at}.
type Event struct {
	Type   string
	TaskID string
	At     time.Time

	// Attempt events.
	Delivery      int64
	Event         string // callback event of the delivery (completed, error, audit, recall)
	Attempt       int
	URL           string
	StatusCode    int
	Error         string
	ErrorClass    string
	LatencyMS     float64
	State         string // delivery state after the attempt
	NextAttemptAt *time.Time

	// Task events.
	TaskStatus        string
	CallbackSucceeded *bool
}

// MarshalJSON writes the flat shape of the SPEC's live events.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Type == EventTypeTask {
		return json.Marshal(struct {
			Type              string    `json:"type"`
			TaskID            string    `json:"task_id"`
			Status            string    `json:"status"`
			CallbackSucceeded *bool     `json:"callback_succeeded,omitempty"`
			At                time.Time `json:"at"`
		}{e.Type, e.TaskID, e.TaskStatus, e.CallbackSucceeded, e.At})
	}
	return json.Marshal(struct {
		Type          string     `json:"type"`
		TaskID        string     `json:"task_id"`
		Delivery      int64      `json:"delivery"`
		Event         string     `json:"event"`
		Attempt       int        `json:"attempt"`
		URL           string     `json:"url"`
		Status        int        `json:"status,omitempty"`
		Error         string     `json:"error,omitempty"`
		ErrorClass    string     `json:"error_class,omitempty"`
		LatencyMS     float64    `json:"latency_ms"`
		State         string     `json:"state"`
		NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
		At            time.Time  `json:"at"`
	}{e.Type, e.TaskID, e.Delivery, e.Event, e.Attempt, e.URL, e.StatusCode, e.Error, e.ErrorClass,
		e.LatencyMS, e.State, e.NextAttemptAt, e.At})
}
