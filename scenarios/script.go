// Package scenarios implements the scripts that decide how a bin answers
// (the "Scenarios" section of the SPEC): a Script parsed from YAML or JSON,
// its validation, the State machine that says what the Nth capture attempt
// of a bin gets (an HTTP reply or an SMTP reply), and a library of ready
// scripts embedded from examples/.
//
// The package is pure: it does no I/O beyond parsing the bytes it is given,
// and its only randomness (a step's chance) comes from a source seeded by the
// caller, so the same seed gives the same run.
package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits that a script must keep. Parse refuses anything beyond them with an
// error naming the field.
const (
	MaxSize      = 64 << 10         // bytes of script text
	MaxSteps     = 1000             // steps in one script
	MaxRepeat    = 1_000_000        // a step's repeat
	MaxDelay     = 10 * time.Minute // a step's delay
	MaxHeaders   = 100              // headers in one step
	MaxHeaderLen = 8 << 10          // bytes of one header value
	MaxNameLen   = 128              // bytes of a script's name
	MaxDescLen   = 1024             // bytes of a script's description
	MaxSMTPText  = 500              // bytes of an SMTP reply message (one line)
)

// What happens when a script's steps run out (Script.After).
const (
	AfterLast    = "last"    // the last step answers every further attempt (the default)
	AfterCycle   = "cycle"   // start again at the first step
	AfterDefault = "default" // the built-in default reply from then on
)

// Where a scripted SMTP reply is given (SMTPStep.At, SMTPReply.At).
const (
	AtRcpt = "rcpt" // in reply to RCPT TO (the default)
	AtData = "data" // in reply to the end of DATA, after the message was read
)

// ErrInvalid is wrapped by every error that Parse and Validate return, so a
// caller can map a bad script to a 400 with errors.Is.
var ErrInvalid = errors.New("invalid scenario")

// Script is a scenario: the steps a bin's replies follow, one step per
// capture attempt (an HTTP request or an e-mail delivery attempt).
// Build one with Parse, or check a hand-built one with Validate.
type Script struct {
	Name        string `json:"name,omitempty" yaml:"name,omitempty"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	Steps       []Step `json:"steps" yaml:"steps"`
	// After is what happens when the steps run out: AfterLast, AfterCycle or
	// AfterDefault. Parse sets it to AfterLast when the script leaves it out.
	After string `json:"after,omitempty" yaml:"after,omitempty"`
}

// Step is one scripted reply. Status, Headers and Body script an HTTP reply;
// SMTP scripts an e-mail reply; Delay, Fault, Chance and Repeat apply to both
// kinds. A step that scripts nothing for a kind gives that kind the default
// reply.
type Step struct {
	// Status is the HTTP status (100..599); 0 means 200 when Headers or Body
	// are set, else the built-in default reply.
	Status  int               `json:"status,omitempty" yaml:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	Body    string            `json:"body,omitempty" yaml:"body,omitempty"`
	// Delay is waited before the reply (or the fault); 0..MaxDelay.
	Delay Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	// Chance, when set, is the probability (0..1) that this step's reply
	// applies; otherwise the attempt gets the default reply. Either way the
	// attempt uses up the step, and takes one draw from the State's seeded
	// source (steps without a chance take none).
	Chance *float64 `json:"chance,omitempty" yaml:"chance,omitempty"`
	// Repeat is how many attempts this step answers; 0 means 1.
	Repeat int       `json:"repeat,omitempty" yaml:"repeat,omitempty"`
	Fault  Fault     `json:"fault,omitempty" yaml:"fault,omitempty"`
	SMTP   *SMTPStep `json:"smtp,omitempty" yaml:"smtp,omitempty"`
}

// SMTPStep scripts the reply to an e-mail delivery attempt.
type SMTPStep struct {
	Code    int    `json:"code" yaml:"code"`                           // 200..599
	Message string `json:"message,omitempty" yaml:"message,omitempty"` // one line; empty: a standard text for Code
	At      string `json:"at,omitempty" yaml:"at,omitempty"`           // AtRcpt or AtData; Parse sets AtRcpt when left out
}

// Fault is a way to answer that is not a well-formed reply.
type Fault string

// The faults a step may script.
const (
	FaultNone    Fault = ""
	FaultReset   Fault = "reset"   // TCP reset (RST) instead of a reply
	FaultClose   Fault = "close"   // close the connection without a reply (for SMTP: after the scripted code, if any)
	FaultHang    Fault = "hang"    // never answer; hold the connection until the client gives up
	FaultGarbage Fault = "garbage" // send bytes that are not HTTP (or SMTP); the step's Body, when set, is those bytes
	FaultSlow    Fault = "slow"    // send the reply a few bytes at a time; the pace is the server's
)

var faultNames = []Fault{FaultReset, FaultClose, FaultHang, FaultGarbage, FaultSlow}

// Valid reports whether f is FaultNone or one of the named faults.
func (f Fault) Valid() bool {
	if f == FaultNone {
		return true
	}
	for _, n := range faultNames {
		if f == n {
			return true
		}
	}
	return false
}

// NoStatus reports whether the fault means that no HTTP status line is
// sent: the connection is reset, closed or left hanging, or gets bytes that
// are not HTTP.
func (f Fault) NoStatus() bool { return f.noReply() || f == FaultGarbage }

// noReply reports whether the fault means that no HTTP reply is sent at all.
func (f Fault) noReply() bool {
	return f == FaultReset || f == FaultClose || f == FaultHang
}

// Duration is a time.Duration written as a Go duration string ("250ms",
// "2s") in YAML and JSON.
type Duration time.Duration

// String returns the Go duration string, such as "1.5s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string. It does not check the bounds;
// Validate does.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"2s\": %w", err)
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string such as "1.5s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a Go duration string. It does not check the bounds;
// Validate does. Prefer Parse, which also names the line of a bad value.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("duration: want a string such as \"2s\", got %s", KindName(n))
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a Go duration such as \"250ms\" or \"2s\"", s)
	}
	return v, nil
}

// ParseError is a script that was refused: where and why.
type ParseError struct {
	Line   int    // 1-based line of the offending text; 0 when not tied to a line (or when the YAML parser gave none)
	Column int    // 1-based column; 0 when unknown
	Field  string // path of the field, such as "steps[1].delay"; "" for the script as a whole
	Msg    string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *ParseError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) *ParseError {
	return &ParseError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks every rule of a script and returns nil or a *ParseError
// naming the first field that breaks one (with no line: the script has no
// text). Parse runs the same checks.
func (s *Script) Validate() error {
	if err := s.validate(); err != nil {
		return err
	}
	return nil
}

func (s *Script) validate() *ParseError {
	if s == nil {
		return fieldErr("", "no script")
	}
	if err := checkText("name", s.Name, MaxNameLen, false); err != nil {
		return err
	}
	if err := checkText("description", s.Description, MaxDescLen, true); err != nil {
		return err
	}
	switch s.After {
	case "", AfterLast, AfterCycle, AfterDefault:
	default:
		return fieldErr("after", "want one of last, cycle, default, got %q", s.After)
	}
	if len(s.Steps) == 0 {
		return fieldErr("steps", "want at least one step, got none")
	}
	if len(s.Steps) > MaxSteps {
		return fieldErr("steps", "want at most %d steps, got %d", MaxSteps, len(s.Steps))
	}
	for i := range s.Steps {
		if err := s.Steps[i].validate(fmt.Sprintf("steps[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (st *Step) validate(p string) *ParseError {
	if st.Status != 0 && (st.Status < 100 || st.Status > 599) {
		return fieldErr(p+".status", "%s", statusMsg(st.Status))
	}
	if st.Repeat < 0 || st.Repeat > MaxRepeat {
		return fieldErr(p+".repeat", "%s", repeatMsg(st.Repeat))
	}
	if st.Delay < 0 {
		return fieldErr(p+".delay", "must not be negative, got %s", st.Delay)
	}
	if time.Duration(st.Delay) > MaxDelay {
		return fieldErr(p+".delay", "%s is over the %s limit", st.Delay, MaxDelay)
	}
	if c := st.Chance; c != nil && !(*c >= 0 && *c <= 1) {
		return fieldErr(p+".chance", "want a probability in 0..1, got %v", *c)
	}
	if !st.Fault.Valid() {
		return fieldErr(p+".fault", "%s", faultMsg(string(st.Fault)))
	}
	if len(st.Headers) > MaxHeaders {
		return fieldErr(p+".headers", "want at most %d headers, got %d", MaxHeaders, len(st.Headers))
	}
	seen := make(map[string]string, len(st.Headers))
	for _, name := range sortedKeys(st.Headers) {
		hp := p + ".headers." + name
		if err := checkHeader(name, st.Headers[name]); err != "" {
			return fieldErr(hp, "%s", err)
		}
		low := strings.ToLower(name)
		if other, ok := seen[low]; ok {
			return fieldErr(hp, "header given twice (also as %q)", other)
		}
		seen[low] = name
	}
	if err := checkText(p+".body", st.Body, MaxSize, true); err != nil {
		return err
	}
	if st.Body != "" && bodyForbidden(st.Status) {
		return fieldErr(p+".body", "a %d reply has no body; remove the body or change the status", st.Status)
	}
	if st.Fault.noReply() {
		switch {
		case st.Status != 0:
			return fieldErr(p+".status", "not allowed with fault %s, which sends no HTTP reply", st.Fault)
		case len(st.Headers) > 0:
			return fieldErr(p+".headers", "not allowed with fault %s, which sends no HTTP reply", st.Fault)
		case st.Body != "":
			return fieldErr(p+".body", "not allowed with fault %s, which sends no HTTP reply", st.Fault)
		}
	}
	if st.Fault == FaultGarbage {
		switch {
		case st.Status != 0:
			return fieldErr(p+".status", "not allowed with fault garbage, which sends no HTTP status (body, when set, is the garbage sent)")
		case len(st.Headers) > 0:
			return fieldErr(p+".headers", "not allowed with fault garbage, which sends no HTTP headers (body, when set, is the garbage sent)")
		}
	}
	if st.Fault == FaultHang && st.Delay != 0 {
		return fieldErr(p+".delay", "not allowed with fault hang, which never answers")
	}
	if sm := st.SMTP; sm != nil {
		if sm.Code < 200 || sm.Code > 599 {
			return fieldErr(p+".smtp.code", "%s", smtpCodeMsg(sm.Code))
		}
		switch sm.At {
		case "", AtRcpt, AtData:
		default:
			return fieldErr(p+".smtp.at", "%s", atMsg(sm.At))
		}
		if err := checkText(p+".smtp.message", sm.Message, MaxSMTPText, false); err != nil {
			return err
		}
		switch st.Fault {
		case FaultHang:
			return fieldErr(p+".smtp", "not allowed with fault hang, which never answers")
		case FaultGarbage:
			return fieldErr(p+".smtp", "not allowed with fault garbage, which sends no SMTP reply")
		}
	}
	return nil
}

func statusMsg(v int) string   { return fmt.Sprintf("want an HTTP status in 100..599, got %d", v) }
func repeatMsg(v int) string   { return fmt.Sprintf("want 1..%d, got %d", MaxRepeat, v) }
func smtpCodeMsg(v int) string { return fmt.Sprintf("want an SMTP code in 200..599, got %d", v) }
func atMsg(v string) string    { return fmt.Sprintf("want rcpt or data, got %q", v) }
func faultMsg(v string) string {
	return fmt.Sprintf("want one of reset, close, hang, garbage, slow, got %q", v)
}

// bodyForbidden reports whether an HTTP reply with this status cannot carry
// a body (RFC 9110: 1xx, 204, 304).
func bodyForbidden(status int) bool {
	return (status >= 100 && status < 200) || status == 204 || status == 304
}

// checkText refuses text that is too long, not UTF-8, or (unless multiline)
// holds control characters.
func checkText(field, s string, max int, multiline bool) *ParseError {
	if len(s) > max {
		return fieldErr(field, "want at most %d bytes, got %d", max, len(s))
	}
	if !utf8.ValidString(s) {
		return fieldErr(field, "not valid UTF-8")
	}
	if multiline {
		return nil
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fieldErr(field, "control character %U not allowed (one line of text)", r)
		}
	}
	return nil
}

// checkHeader returns why a header cannot be sent, or "".
func checkHeader(name, value string) string {
	if name == "" {
		return "empty header name"
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Sprintf("header name %q holds %q, which a header name cannot", name, name[i])
		}
	}
	switch strings.ToLower(name) {
	case "content-length", "transfer-encoding":
		return fmt.Sprintf("%s is set by the server from the body; it cannot be scripted", name)
	}
	if len(value) > MaxHeaderLen {
		return fmt.Sprintf("value: want at most %d bytes, got %d", MaxHeaderLen, len(value))
	}
	if !utf8.ValidString(value) {
		return "value is not valid UTF-8"
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Sprintf("value holds control byte %#02x, which a header value cannot", c)
		}
	}
	return ""
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// normalize fills the defaults that Parse makes explicit: After, SMTP.At,
// and no empty header maps.
func (s *Script) normalize() {
	if s.After == "" {
		s.After = AfterLast
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		if len(st.Headers) == 0 {
			st.Headers = nil
		}
		if st.SMTP != nil && st.SMTP.At == "" {
			st.SMTP.At = AtRcpt
		}
	}
}

// Clone returns a deep copy of s.
func (s *Script) Clone() *Script {
	if s == nil {
		return nil
	}
	c := *s
	c.Steps = make([]Step, len(s.Steps))
	for i, st := range s.Steps {
		if st.Headers != nil {
			st.Headers = maps.Clone(st.Headers)
		}
		if st.Chance != nil {
			v := *st.Chance
			st.Chance = &v
		}
		if st.SMTP != nil {
			v := *st.SMTP
			st.SMTP = &v
		}
		c.Steps[i] = st
	}
	return &c
}

// repeats returns how many attempts a step answers.
func (st *Step) repeats() int {
	if st.Repeat < 1 {
		return 1
	}
	return st.Repeat
}
