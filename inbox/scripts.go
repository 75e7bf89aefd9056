package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/callbin/callbin/scenarios"
)

// Scripts holds each bin's scenario and its position in it, so that the
// HTTP capture handler and the SMTP sink, which both consume one step per
// capture attempt, walk the same script. Scripts are kept in the store;
// positions live in memory and start again at a restart.
type Scripts struct {
	Store *Store
	Seed  int64 // seeds every bin's chance draws: the same seed gives the same run

	mu     sync.Mutex
	states map[string]*scenarios.State // nil value: the bin answers with the default reply
}

// state returns the bin's position in its script, loading the script on
// first use; nil means the default reply.
func (sc *Scripts) state(ctx context.Context, bin string) (*scenarios.State, error) {
	sc.mu.Lock()
	st, ok := sc.states[bin]
	sc.mu.Unlock()
	if ok {
		return st, nil
	}
	b, err := sc.Store.FindBin(ctx, bin)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if b != nil && b.Scenario != nil {
		script, err := scenarios.Parse(b.Scenario)
		if err != nil {
			return nil, fmt.Errorf("scenario of bin %q: %w", bin, err)
		}
		st = scenarios.NewState(script, sc.Seed)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.states == nil {
		sc.states = make(map[string]*scenarios.State)
	}
	if cur, ok := sc.states[bin]; ok { // another capture loaded it first
		return cur, nil
	}
	sc.states[bin] = st
	return st, nil
}

// Next uses up one step of the bin's script for an HTTP capture.
func (sc *Scripts) Next(ctx context.Context, bin string) (scenarios.Reply, error) {
	st, err := sc.state(ctx, bin)
	if err != nil || st == nil {
		return scenarios.Reply{Default: true, Step: -1}, err
	}
	return st.Next(), nil
}

// NextSMTP uses up one step of the bin's script for an e-mail delivery
// attempt.
func (sc *Scripts) NextSMTP(ctx context.Context, bin string) (scenarios.SMTPReply, error) {
	st, err := sc.state(ctx, bin)
	if err != nil || st == nil {
		return scenarios.SMTPReply{Default: true, At: scenarios.AtRcpt, Step: -1}, err
	}
	return st.NextSMTP(), nil
}

// Set stores a bin's script (nil: back to the default reply), creating the
// bin if needed, and starts it from its first step.
func (sc *Scripts) Set(ctx context.Context, bin string, script *scenarios.Script) error {
	var stored []byte
	if script != nil {
		var err error
		if stored, err = json.Marshal(script); err != nil {
			return fmt.Errorf("encode scenario: %w", err)
		}
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if err := sc.Store.SetScenario(ctx, bin, stored, time.Now()); err != nil {
		return err
	}
	if sc.states == nil {
		sc.states = make(map[string]*scenarios.State)
	}
	if script == nil {
		sc.states[bin] = nil
	} else {
		sc.states[bin] = scenarios.NewState(script, sc.Seed)
	}
	return nil
}

// Reset starts the bin's script again from its first step.
func (sc *Scripts) Reset(ctx context.Context, bin string) error {
	st, err := sc.state(ctx, bin)
	if err != nil {
		return err
	}
	if st != nil {
		st.Reset()
	}
	return nil
}

// Forget drops what is known of a bin (it was deleted).
func (sc *Scripts) Forget(bin string) {
	sc.mu.Lock()
	delete(sc.states, bin)
	sc.mu.Unlock()
}

// ParseScript reads a scenario given to the API: a JSON object (the script),
// a JSON string or bare text naming a ready script of the library, or the
// script's YAML or JSON text.
func ParseScript(raw []byte) (*scenarios.Script, error) {
	text := strings.TrimSpace(string(raw))
	var name string
	if strings.HasPrefix(text, `"`) && json.Unmarshal([]byte(text), &name) == nil {
		text = name
	}
	if text != "" && !strings.ContainsAny(text, ":{}[]\n") {
		if s, ok := scenarios.Lookup(text); ok {
			return s, nil
		}
		return nil, errorf(ErrInvalid, "scenario %q: no such ready scenario (try one of %s)", text, strings.Join(scenarios.Names(), ", "))
	}
	s, err := scenarios.Parse([]byte(text))
	if err != nil {
		return nil, scriptError{err}
	}
	return s, nil
}

// scriptError is a refused script: a 400 that names the line and field.
type scriptError struct{ err error }

func (e scriptError) Error() string   { return e.err.Error() }
func (e scriptError) Unwrap() []error { return []error{ErrInvalid, e.err} }

func (e scriptError) ErrorDetail() ErrorDetail {
	d := ErrorDetail{Code: "invalid_scenario", Message: e.err.Error()}
	var pe *scenarios.ParseError
	if errors.As(e.err, &pe) {
		d.Line, d.Field = pe.Line, pe.Field
	}
	return d
}
