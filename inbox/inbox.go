// Package inbox implements callbin's bins: named places that capture
// whatever is sent to them. It owns the domain types (Bin, Capture), their
// SQLite store with its group-commit writer, the capture handler served at
// /b/{bin}/..., and the bins REST API under /api/v1/bins.
package inbox

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Capture kinds.
const (
	KindHTTP  = "http"
	KindEmail = "email"
)

// Expected errors. Handlers map them to HTTP statuses in one table (see
// errorStatus); callers match them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
	ErrConflict = errors.New("conflict")
	ErrTimeout  = errors.New("timed out")
	ErrTooLarge = errors.New("too large")
	ErrClosed   = errors.New("store closed")
)

// kindError is an error of one of the kinds above whose message is only its
// own: errors.Is matches the kind, and what it wraps.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// errorf returns an error of the given kind with a message formatted as
// fmt.Errorf does (%w included).
func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

// Bin is a named place that captures what is sent to it.
type Bin struct {
	Name          string
	CreatedAt     time.Time
	Scenario      []byte // the bin's script as JSON; nil for the default reply
	CaptureCount  int64
	LastCaptureAt time.Time // zero when nothing was captured yet
}

// Header is one header line as received: name and value.
type Header [2]string

// Reply is what a capture was answered: an HTTP status, a fault (the
// connection was reset, closed, ...), or an SMTP code.
type Reply struct {
	Status   int    `json:"status,omitempty"`
	Fault    string `json:"fault,omitempty"`
	SMTPCode int    `json:"smtp_code,omitempty"`
}

// Capture is one request (or e-mail) caught by a bin.
type Capture struct {
	ID         int64
	Bin        string
	Kind       string
	Method     string
	Path       string // the escaped path as received
	Query      string // the raw query string, without '?'
	Proto      string
	Headers    []Header
	Body       []byte // nil when loaded without its body
	Size       int64  // bytes kept (at most the body limit)
	Truncated  bool
	RemoteAddr string
	TLS        bool
	ReceivedAt time.Time
	ReadTime   time.Duration // time spent reading the body
	Reply      Reply
	Email      *Email // e-mail captures only
}

// Email is the parsed form of an e-mail capture. The raw message is the
// capture's body.
type Email struct {
	From        string       `json:"from"`
	To          []string     `json:"to"`
	Subject     string       `json:"subject"`
	Date        string       `json:"date,omitempty"`
	Text        string       `json:"text"`
	HTML        string       `json:"html"`
	Attachments []Attachment `json:"attachments"`
	ParseError  string       `json:"parse_error,omitempty"`
	// The SMTP envelope, set by the SMTP sink: the sender given to MAIL FROM
	// ("" for a bounce), and the recipients given to RCPT TO that name this
	// capture's bin.
	MailFrom string   `json:"mail_from"`
	RcptTo   []string `json:"rcpt_to"`
}

// Attachment describes one attachment (or inline part) of an e-mail.
type Attachment struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int64  `json:"size"`
	URL  string `json:"url,omitempty"` // filled in by the API
}

// CaptureFilter selects captures of one bin. The zero values mean "no
// constraint", except Limit, which defaults to DefaultLimit.
type CaptureFilter struct {
	Bin    string
	Before int64  // only ids < Before (the list cursor)
	After  int64  // only ids > After
	Kind   string // KindHTTP, KindEmail or ""
	Q      string // substring of path, headers or body (case-insensitive for ASCII)
	Limit  int
	Oldest bool // oldest first instead of newest first
	Bodies bool // load bodies too
}

// Limits of a capture list page.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// MaxBinName is the longest bin name accepted.
const MaxBinName = 64

// NormalizeBinName returns the canonical (lower-case) form of a bin name, or
// an ErrInvalid error saying what is wrong with it. Bin names are
// case-insensitive because they double as e-mail local parts.
func NormalizeBinName(name string) (string, error) {
	if name == "" {
		return "", errorf(ErrInvalid, "bin name is empty")
	}
	if len(name) > MaxBinName {
		return "", errorf(ErrInvalid, "bin name is %d bytes long, at most %d are allowed", len(name), MaxBinName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return "", errorf(ErrInvalid, "bin name %q: only letters, digits and '-', '_', '.' (not first) are allowed", name)
		}
	}
	if strings.Contains(name, "..") {
		return "", errorf(ErrInvalid, "bin name %q must not contain '..'", name)
	}
	return strings.ToLower(name), nil
}

// Event is what the store publishes after a commit: a capture, or a change
// to a bin. It marshals to the JSON objects of the live stream.
type Event struct {
	Type       string     `json:"type"` // "capture" or "bin"
	Bin        string     `json:"bin"`
	ID         int64      `json:"id,omitempty"`
	Kind       string     `json:"kind,omitempty"`
	Method     string     `json:"method,omitempty"`
	Path       string     `json:"path,omitempty"`
	Query      string     `json:"query,omitempty"`
	Size       *int64     `json:"size,omitempty"`
	ReceivedAt *time.Time `json:"received_at,omitempty"`
	Reply      *Reply     `json:"reply,omitempty"`
	Action     string     `json:"action,omitempty"` // bin events: created, deleted, cleared, scenario
	Name       string     `json:"name,omitempty"`   // bin events: the bin's name
}

// Publisher receives events after they are committed. Publish must not
// block.
type Publisher interface {
	Publish(Event)
}

// CaptureEvent is the live event of a stored capture.
func CaptureEvent(c *Capture) Event {
	size, at, reply := c.Size, c.ReceivedAt, c.Reply
	return Event{
		Type: "capture", Bin: c.Bin, ID: c.ID, Kind: c.Kind, Method: c.Method,
		Path: c.Path, Query: c.Query, Size: &size, ReceivedAt: &at, Reply: &reply,
	}
}

func binEvent(name, action string) Event {
	return Event{Type: "bin", Bin: name, Name: name, Action: action}
}
