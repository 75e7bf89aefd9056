package run

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Observation is what a run read back from the callbin once its tasks had
// settled (or the run timed out): the input of Expectation.Check.
type Observation struct {
	Tasks []TaskObservation    // by index in File.Tasks
	Bins  map[string][]Capture // by the bin's name in the file, oldest first
}

// TaskObservation is one task as the task API shows it.
type TaskObservation struct {
	ID                string
	Status            string
	CallbackSucceeded *bool
	Deliveries        []Delivery // oldest first
	// Settled is true when every delivery of the task was decided
	// (succeeded or failed) after its last step.
	Settled bool
	// Err says why the task could not be created or driven; "" when it was.
	Err string
}

// Delivery is one callback of a task, as GET /v1/task/{id}/callbacks
// shows it.
type Delivery struct {
	ID       int64     `json:"id"`
	Event    string    `json:"event"`
	Target   string    `json:"target"`
	State    string    `json:"state"` // pending, in_flight, succeeded, failed
	Attempts []Attempt `json:"attempts"`
}

// Decided reports whether the delivery succeeded or failed for good.
func (d Delivery) Decided() bool { return d.State == "succeeded" || d.State == "failed" }

// Attempt is one attempt of a delivery.
type Attempt struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"` // start, on the sender's clock
	URL        string    `json:"url"`
	InFlight   bool      `json:"in_flight"`
	Status     *int      `json:"status"` // HTTP status or SMTP code
	Error      *string   `json:"error"`
	ErrorClass *string   `json:"error_class"`
	LatencyMS  *float64  `json:"latency_ms"`
}

// Result returns what the receiver gave the attempt: its error class when
// it got no complete reply (timeout, reset, closed, ...), else its HTTP
// status or SMTP code.
func (a Attempt) Result() Status {
	return attemptResult(a.Status, a.ErrorClass, a.InFlight)
}

func attemptResult(status *int, class *string, inFlight bool) Status {
	if class != nil && slices.Contains(attemptNames, *class) {
		return Status{Name: *class}
	}
	if status != nil && *status != 0 {
		return Status{Code: *status}
	}
	if inFlight {
		return Status{Name: "in_flight"}
	}
	if class != nil && *class != "" {
		return Status{Name: *class}
	}
	return Status{Name: "none"}
}

// Capture is one capture of a bin, as the bins API shows it.
type Capture struct {
	ID    int64  `json:"id"`
	Kind  string `json:"kind"`
	Reply struct {
		Status   int    `json:"status"`
		Fault    string `json:"fault"`
		SMTPCode int    `json:"smtp_code"`
	} `json:"reply"`
	Size  int64   `json:"size"`
	Body  *string `json:"body"` // nil unless loaded (and UTF-8)
	Email *struct {
		Subject string `json:"subject"`
		Text    string `json:"text"`
	} `json:"email"`
}

// Result returns the reply the capture got: its scripted fault when there
// was one, else its HTTP status or SMTP code.
func (c Capture) Result() Status {
	switch {
	case c.Reply.Fault != "":
		return Status{Name: c.Reply.Fault}
	case c.Reply.Status != 0:
		return Status{Code: c.Reply.Status}
	case c.Reply.SMTPCode != 0:
		return Status{Code: c.Reply.SMTPCode}
	}
	return Status{Name: "none"}
}

// Check returns the ways obs falls short of e, each reading "FIELD: got X,
// want Y"; none when it is met.
func (e *Expectation) Check(obs *Observation) []string {
	if e.IsBin() {
		return e.checkBin(obs.Bins[e.Bin])
	}
	if e.Task < 0 || e.Task >= len(obs.Tasks) {
		return []string{fmt.Sprintf("task %d was not run", e.Task)}
	}
	return e.checkTask(obs.Tasks[e.Task])
}

func (e *Expectation) checkTask(t TaskObservation) []string {
	if t.Err != "" {
		return []string{"the task was not run through: " + t.Err}
	}
	var fails []string
	var attempts []Attempt
	for _, d := range t.Deliveries {
		if e.Delivery == "" || d.Event == e.Delivery {
			attempts = append(attempts, d.Attempts...)
		}
	}
	if !t.Settled {
		fails = append(fails, fmt.Sprintf("callbacks not decided before the run's timeout (%d attempts so far)", len(attempts)))
	}
	if e.CallbackSucceeded != nil {
		if t.CallbackSucceeded == nil || *t.CallbackSucceeded != *e.CallbackSucceeded {
			fails = append(fails, fmt.Sprintf("callback_succeeded: got %s, want %t", optBool(t.CallbackSucceeded), *e.CallbackSucceeded))
		}
	}
	if e.TaskStatus != "" && t.Status != e.TaskStatus {
		fails = append(fails, fmt.Sprintf("task_status: got %q, want %q", t.Status, e.TaskStatus))
	}
	if e.Delivery != "" && len(attempts) == 0 && !slices.ContainsFunc(t.Deliveries, func(d Delivery) bool { return d.Event == e.Delivery }) {
		fails = append(fails, fmt.Sprintf("delivery: got no %s callback (callbacks: %s)", e.Delivery, eventList(t.Deliveries)))
	}
	if e.Attempts != nil && len(attempts) != *e.Attempts {
		fails = append(fails, fmt.Sprintf("attempts: got %d, want %d", len(attempts), *e.Attempts))
	}
	if e.Statuses != nil {
		got := make([]Status, len(attempts))
		for i, a := range attempts {
			got[i] = a.Result()
		}
		if !slices.Equal(got, e.Statuses) {
			fails = append(fails, fmt.Sprintf("statuses: got %s, want %s", formatStatuses(got), formatStatuses(e.Statuses)))
		}
	}
	if e.Within > 0 || e.AtLeast > 0 {
		if len(attempts) == 0 {
			fails = append(fails, "timing: got no attempts, want at least one to time")
		} else {
			span := attempts[len(attempts)-1].At.Sub(attempts[0].At)
			if e.Within > 0 && span > e.Within {
				fails = append(fails, fmt.Sprintf("within: got %s from the first attempt to the last, want at most %s", roundSpan(span), e.Within))
			}
			if span < e.AtLeast {
				fails = append(fails, fmt.Sprintf("at_least: got %s from the first attempt to the last, want at least %s", roundSpan(span), e.AtLeast))
			}
		}
	}
	return fails
}

func (e *Expectation) checkBin(all []Capture) []string {
	var caps []Capture
	for _, c := range all {
		if e.Kind == "" || c.Kind == e.Kind {
			caps = append(caps, c)
		}
	}
	var fails []string
	what := "captures"
	if e.Kind != "" {
		what = e.Kind + " captures"
	}
	if e.Captures != nil && len(caps) != *e.Captures {
		fails = append(fails, fmt.Sprintf("captures: got %d %s, want %d", len(caps), what, *e.Captures))
	}
	if e.Statuses != nil {
		got := make([]Status, len(caps))
		for i, c := range caps {
			got[i] = c.Result()
		}
		if !slices.Equal(got, e.Statuses) {
			fails = append(fails, fmt.Sprintf("statuses: got %s, want %s", formatStatuses(got), formatStatuses(e.Statuses)))
		}
	}
	if e.BodyContains != "" {
		fails = append(fails, everyCapture(caps, what, "body_contains", e.BodyContains, func(c Capture) (string, bool) {
			if c.Email != nil && c.Email.Text != "" {
				return c.Email.Text, true
			}
			if c.Body == nil {
				return "", false
			}
			return *c.Body, true
		})...)
	}
	if e.SubjectContains != "" {
		fails = append(fails, everyCapture(caps, what, "subject_contains", e.SubjectContains, func(c Capture) (string, bool) {
			if c.Email == nil {
				return "", false
			}
			return c.Email.Subject, true
		})...)
	}
	return fails
}

// everyCapture checks that the text of every capture with a body holds
// want. Captures without one (an e-mail refused at RCPT, which never sent
// its message) have nothing to check; at least one must have a body.
func everyCapture(caps []Capture, what, field, want string, text func(Capture) (string, bool)) []string {
	checked := 0
	for _, c := range caps {
		if c.Size == 0 {
			continue
		}
		checked++
		s, ok := text(c)
		if !ok {
			return []string{fmt.Sprintf("%s: capture %d has no such text (not UTF-8, or not an e-mail), want one holding %q", field, c.ID, want)}
		}
		if !strings.Contains(s, want) {
			return []string{fmt.Sprintf("%s: got capture %d with %q, want it to hold %q", field, c.ID, clip(s, 120), want)}
		}
	}
	if checked == 0 {
		return []string{fmt.Sprintf("%s: got no %s with a body, want some whose text holds %q", field, what, want)}
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func optBool(b *bool) string {
	if b == nil {
		return "absent (undecided)"
	}
	return fmt.Sprint(*b)
}

func eventList(ds []Delivery) string {
	if len(ds) == 0 {
		return "none"
	}
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Event
	}
	return strings.Join(names, ", ")
}

// roundSpan keeps a span readable: whole seconds from a minute up, else
// milliseconds.
func roundSpan(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
