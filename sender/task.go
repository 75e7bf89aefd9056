package sender

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Task statuses.
const (
	StatusPending   = "pending"
	StatusCompleted = "completed"
	StatusCanceled  = "canceled"
	StatusError     = "error"
)

// Callback events: why a delivery was made.
const (
	EventCompleted = "completed"
	EventError     = "error"
	EventAudit     = "audit"
	EventRecall    = "recall"
)

// Customer review statuses set by an audit.
const (
	ReviewAccepted = "accepted"
	ReviewRejected = "rejected"
	ReviewFixed    = "fixed"
)

// Task types with their own validation. Any other name is refused.
const (
	TypeCategorization = "categorization"
	TypeGeneric        = "generic"
)

// Task is the task object of the API and of every callback payload.
type Task struct {
	TaskID                 string            `json:"task_id"`
	Type                   string            `json:"type"`
	Instruction            string            `json:"instruction"`
	Params                 json.RawMessage   `json:"params"`
	Status                 string            `json:"status"`
	CreatedAt              time.Time         `json:"created_at"`
	UpdatedAt              time.Time         `json:"updated_at"`
	CompletedAt            *time.Time        `json:"completed_at"`
	CallbackURL            *string           `json:"callback_url"`
	CallbackSucceeded      *bool             `json:"callback_succeeded,omitempty"`
	CallbackSucceededAt    *time.Time        `json:"callback_succeeded_at"`
	Response               json.RawMessage   `json:"response"`
	Metadata               json.RawMessage   `json:"metadata"`
	UniqueID               *string           `json:"unique_id"`
	IsTest                 bool              `json:"is_test"`
	CustomerReviewStatus   *string           `json:"customer_review_status,omitempty"`
	CustomerReviewComments []string          `json:"customer_review_comments,omitempty"`
	PriorResponses         []json.RawMessage `json:"prior_responses,omitempty"`
}

// Payload is the JSON body of a callback.
type Payload struct {
	TaskID   string          `json:"task_id"`
	Status   string          `json:"status"`
	Response json.RawMessage `json:"response"`
	Task     *Task           `json:"task"`
}

// payloadFor builds the callback body for t.
func payloadFor(t *Task) ([]byte, error) {
	resp := t.Response
	if len(resp) == 0 {
		resp = json.RawMessage("null")
	}
	b, err := json.Marshal(Payload{TaskID: t.TaskID, Status: t.Status, Response: resp, Task: t})
	if err != nil {
		return nil, fmt.Errorf("marshal payload: %w", err)
	}
	return b, nil
}

var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// attachmentTypes accepted by categorization tasks.
var attachmentTypes = map[string]bool{"text": true, "image": true, "website": true, "pdf": true, "video": true, "audio": true}

// createInput is a parsed task-creation request.
type createInput struct {
	Type        string
	CallbackURL string // as given ("" if none)
	Instruction string
	Params      json.RawMessage
	Metadata    json.RawMessage
	UniqueID    string
	IsTest      bool
}

// reserved are the top-level fields of a creation request that are not
// type-specific params.
var reserved = map[string]bool{"callback_url": true, "instruction": true, "params": true,
	"metadata": true, "unique_id": true, "is_test": true}

// parseCreate reads a creation request. It returns the input it could read
// even on error, so that an error callback can still go to its callback_url;
// targetErr reports a bad callback_url (no error callback is possible then).
func parseCreate(typ string, body []byte) (in createInput, targetErr, err error) {
	in = createInput{Type: typ, Params: json.RawMessage("{}"), Metadata: json.RawMessage("{}")}
	var fields map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		fields = map[string]json.RawMessage{}
	} else if err := json.Unmarshal(body, &fields); err != nil {
		return in, nil, bodyErr(body, err)
	} else if fields == nil {
		return in, nil, fieldErr("body", "must be a JSON object")
	}
	if raw, ok := fields["callback_url"]; ok && !isNull(raw) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return in, fieldErr("callback_url", "must be a string"), nil
		}
		if s != "" {
			if _, err := parseTarget(s); err != nil {
				return in, &FieldError{Field: "callback_url", Msg: err.Error()}, nil
			}
		}
		in.CallbackURL = s
	}
	if !typeName.MatchString(typ) || (typ != TypeCategorization && typ != TypeGeneric) {
		return in, nil, fmt.Errorf("%w %q: use %s or %s", ErrUnknownType, truncate(typ, 64), TypeCategorization, TypeGeneric)
	}
	if raw, ok := fields["instruction"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &in.Instruction) != nil {
			return in, nil, fieldErr("instruction", "must be a string")
		}
	}
	if raw, ok := fields["metadata"]; ok && !isNull(raw) {
		if !isObject(raw) {
			return in, nil, fieldErr("metadata", "must be a JSON object")
		}
		in.Metadata = compact(raw)
	}
	if raw, ok := fields["unique_id"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &in.UniqueID) != nil {
			return in, nil, fieldErr("unique_id", "must be a string")
		}
		if len(in.UniqueID) > 256 {
			return in, nil, fieldErr("unique_id", "longer than 256 characters")
		}
	}
	if raw, ok := fields["is_test"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &in.IsTest) != nil {
			return in, nil, fieldErr("is_test", "must be a boolean")
		}
	}
	params := map[string]json.RawMessage{}
	if raw, ok := fields["params"]; ok && !isNull(raw) {
		if !isObject(raw) {
			return in, nil, fieldErr("params", "must be a JSON object")
		}
		_ = json.Unmarshal(raw, &params)
	}
	for k, v := range fields {
		if !reserved[k] {
			params[k] = v
		}
	}
	pb, err := json.Marshal(params)
	if err != nil {
		return in, nil, fieldErr("params", "cannot be encoded: %v", err)
	}
	in.Params = pb
	if typ == TypeCategorization {
		if err := validateCategorization(params); err != nil {
			return in, nil, err
		}
	}
	return in, nil, nil
}

// categorizationParams are the fields a categorization task takes.
type categorizationParams struct {
	AttachmentType string
	Attachment     string
	Categories     []string
	AllowMultiple  bool
}

func validateCategorization(p map[string]json.RawMessage) error {
	_, err := readCategorization(p)
	return err
}

func readCategorization(p map[string]json.RawMessage) (categorizationParams, error) {
	var c categorizationParams
	raw, ok := p["attachment_type"]
	if !ok || isNull(raw) {
		return c, fieldErr("attachment_type", "required (one of text, image, website, pdf, video, audio)")
	}
	if json.Unmarshal(raw, &c.AttachmentType) != nil {
		return c, fieldErr("attachment_type", "must be a string")
	}
	if !attachmentTypes[c.AttachmentType] {
		return c, fieldErr("attachment_type", "%q is not one of text, image, website, pdf, video, audio", truncate(c.AttachmentType, 64))
	}
	raw, ok = p["attachment"]
	if !ok || isNull(raw) {
		return c, fieldErr("attachment", "required")
	}
	if json.Unmarshal(raw, &c.Attachment) != nil {
		return c, fieldErr("attachment", "must be a string")
	}
	if strings.TrimSpace(c.Attachment) == "" {
		return c, fieldErr("attachment", "must not be empty")
	}
	raw, ok = p["categories"]
	if !ok || isNull(raw) {
		return c, fieldErr("categories", "required (a non-empty list of strings)")
	}
	if json.Unmarshal(raw, &c.Categories) != nil {
		return c, fieldErr("categories", "must be a list of strings")
	}
	if len(c.Categories) == 0 {
		return c, fieldErr("categories", "must not be empty")
	}
	seen := map[string]bool{}
	for i, s := range c.Categories {
		if strings.TrimSpace(s) == "" {
			return c, fieldErr(fmt.Sprintf("categories[%d]", i), "must not be empty")
		}
		if seen[s] {
			return c, fieldErr(fmt.Sprintf("categories[%d]", i), "%q appears twice", truncate(s, 64))
		}
		seen[s] = true
	}
	if raw, ok := p["allow_multiple"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &c.AllowMultiple) != nil {
			return c, fieldErr("allow_multiple", "must be a boolean")
		}
	}
	return c, nil
}

// plausibleResponse makes the response an auto-completed task gets: for a
// categorization, one of its categories (chosen by the task id, so it is
// stable); for a generic task, a small result object.
func plausibleResponse(t *Task) json.RawMessage {
	if t.Type == TypeCategorization {
		var p map[string]json.RawMessage
		if json.Unmarshal(t.Params, &p) == nil {
			if c, err := readCategorization(p); err == nil {
				h := fnv.New32a()
				h.Write([]byte(t.TaskID))
				pick := c.Categories[int(h.Sum32()%uint32(len(c.Categories)))]
				var v any = pick
				if c.AllowMultiple {
					v = []string{pick}
				}
				b, _ := json.Marshal(map[string]any{"category": v})
				return b
			}
		}
	}
	return json.RawMessage(`{"result":"ok","auto_completed":true}`)
}

// Target is where a callback goes: an HTTP(S) URL or an e-mail address.
type Target struct {
	URL   string // set for http and https
	Email string // set for e-mail targets (without mailto:)
}

// parseTarget checks a callback target: http(s)://host... or user@host or
// mailto:user@host.
func parseTarget(s string) (Target, error) {
	if len(s) > 2048 {
		return Target{}, fmt.Errorf("%w: longer than 2048 characters", ErrBadTarget)
	}
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.Hostname() == "" {
			return Target{}, fmt.Errorf("%w: %q has no valid host", ErrBadTarget, truncate(s, 200))
		}
		if u.User != nil {
			return Target{}, fmt.Errorf("%w: credentials in the URL are not allowed", ErrBadTarget)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return Target{}, fmt.Errorf("%w: port %s of %q is not from 1 to 65535", ErrBadTarget, p, truncate(s, 200))
			}
		}
		return Target{URL: u.String()}, nil
	case strings.HasPrefix(lower, "mailto:"):
		s = s[len("mailto:"):]
		if i := strings.IndexByte(s, '?'); i >= 0 {
			s = s[:i]
		}
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
	case strings.Contains(s, "://"):
		return Target{}, fmt.Errorf("%w: scheme of %q is not http or https", ErrBadTarget, truncate(s, 200))
	}
	if s == "" {
		return Target{}, fmt.Errorf("%w: mailto: without an address", ErrBadTarget)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(a.Address, "@") {
		return Target{}, fmt.Errorf("%w: %q is neither", ErrBadTarget, truncate(s, 200))
	}
	return Target{Email: a.Address}, nil
}

func (t Target) String() string {
	if t.Email != "" {
		return "mailto:" + strings.NewReplacer("%", "%25", "?", "%3F").Replace(t.Email)
	}
	return t.URL
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func isObject(raw json.RawMessage) bool {
	b := bytes.TrimSpace(raw)
	return len(b) > 0 && b[0] == '{'
}

func compact(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// taskIDs makes task ids that sort by creation, shaped like the hosted
// API's (MongoDB ObjectId: 24 hex digits): 4 bytes of Unix seconds, 5
// random bytes chosen once, a 3-byte counter. New ids land at the end of
// the indexes that hold them instead of on a random page each.
type taskIDs struct {
	random [5]byte
	seq    atomic.Uint32
}

func newTaskIDs() *taskIDs {
	g := &taskIDs{}
	_, _ = rand.Read(g.random[:])
	var c [4]byte
	_, _ = rand.Read(c[:])
	g.seq.Store(binary.BigEndian.Uint32(c[:]) & 0xffffff)
	return g
}

func (g *taskIDs) next(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(now.Unix()))
	copy(b[4:9], g.random[:])
	c := g.seq.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

// newID returns n random bytes in hex.
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
