package sender

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers match them with errors.Is; the HTTP layer maps
// them to statuses in one table (statusOf).
var (
	ErrNotFound      = errors.New("not found")
	ErrInvalid       = errors.New("invalid input")
	ErrUnknownType   = errors.New("unknown task type")
	ErrDuplicate     = errors.New("unique_id already used")
	ErrState         = errors.New("task is not in a state that allows this")
	ErrUnauthorized  = errors.New("missing or malformed API key")
	ErrNoCallback    = errors.New("task has no callback to send")
	ErrBadScale      = errors.New("time scale must be a number from 1 to 1e9")
	ErrBadPolicy     = errors.New("bad retry policy")
	ErrBadTarget     = errors.New("callback target must be an http(s) URL or an e-mail address")
	ErrUnknownEvent  = errors.New("unknown callback event")
	ErrMethod        = errors.New("method not allowed")
	ErrNotOpen       = errors.New("engine is not open")
	ErrJournalNotWAL = errors.New("sqlite journal_mode is not wal")
)

// kindError is an error whose message is said whole to the client, of
// the kind (a sentinel above) that sets its status.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorOf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// FieldError is a validation error about one named field of the input.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }

// Unwrap makes a FieldError match ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}
