package scenarios

import (
	"maps"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// Reply is what an HTTP capture gets.
type Reply struct {
	// Default is true when the reply is the built-in default (200 with
	// {"ok":true}, or 413 for an over-size body): Status, Headers and Body
	// are then empty. Delay and Fault still apply.
	Default bool
	Status  int               // the status to send; 0 when Default, or with a fault that sends no status
	Headers map[string]string // a copy, the caller's to keep; nil when none
	Body    string
	Delay   time.Duration // wait this long before the reply (or the fault)
	Fault   Fault
	// Step is the index of the step that was used up, or -1 when none was
	// (no script, or after: default once the steps ran out).
	Step int
}

// SMTPReply is what an e-mail delivery attempt gets. It is decided once per
// attempt (one SMTP transaction to a bin) and applies at At.
type SMTPReply struct {
	// Default is true when the message is accepted normally at RCPT and at
	// DATA; the other fields are then zero (At is still AtRcpt).
	Default bool
	Code    int    // the code to reply at At; 0: no scripted code (only Delay or Fault)
	Message string // the reply text; a standard one for Code when the script gave none
	At      string // AtRcpt or AtData
	Delay   time.Duration
	// Fault at At: reset and close drop the connection (after Code, when
	// there is one), hang never answers, slow dribbles the reply, garbage
	// writes bytes that are not SMTP.
	Fault Fault
	Step  int // as Reply.Step
}

// State is one bin's position in its script. Each Next or NextSMTP call is
// one capture attempt and uses up one step, whatever the kind: HTTP requests
// and e-mail delivery attempts to the same bin share one counter (and one
// random source), so a script reads as "the Nth thing that reaches the bin".
// A State is safe for concurrent use.
type State struct {
	script *Script // nil: always the default reply
	ends   []int   // ends[i]: attempts answered by steps[0..i]
	seed   int64

	mu    sync.Mutex
	src   *rand.PCG
	rng   *rand.Rand
	pos   int   // attempts used in the current pass over the steps, at most ends[len-1]
	count int64 // attempts since the last Reset
}

// NewState starts a script at its first step. The seed drives every chance
// draw: two States with the same script and seed give the same replies.
// s may be nil (every attempt gets the default reply); it should come from
// Parse or have passed Validate. NewState keeps its own copy of s.
func NewState(s *Script, seed int64) *State {
	st := &State{seed: seed}
	if s != nil && len(s.Steps) > 0 {
		st.script = s.Clone()
		st.ends = make([]int, len(s.Steps))
		total := 0
		for i := range s.Steps {
			total += s.Steps[i].repeats()
			st.ends[i] = total
		}
	}
	st.src = rand.NewPCG(0, 0)
	st.rng = rand.New(st.src)
	st.reseed()
	return st
}

func (st *State) reseed() {
	st.src.Seed(uint64(st.seed), uint64(st.seed)^0x9e3779b97f4a7c15)
}

// Script returns a copy of the script this State follows, or nil.
func (st *State) Script() *Script { return st.script.Clone() }

// Attempts returns how many attempts were decided since NewState or the
// last Reset.
func (st *State) Attempts() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.count
}

// Reset goes back to the first step and restarts the random source from the
// seed, so the run that follows repeats the first one.
func (st *State) Reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pos, st.count = 0, 0
	st.reseed()
}

// next uses up one attempt. It returns the step that answers it (-1: none)
// and whether its chance came up (always true without a chance).
func (st *State) next() (int, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.count++
	if st.script == nil {
		return -1, true
	}
	total := st.ends[len(st.ends)-1]
	if st.pos >= total && st.script.After == AfterCycle {
		st.pos = 0
	}
	var idx int
	switch {
	case st.pos < total:
		idx = sort.SearchInts(st.ends, st.pos+1)
		st.pos++
	case st.script.After == AfterDefault:
		return -1, true
	default: // AfterLast
		idx = len(st.ends) - 1
	}
	if c := st.script.Steps[idx].Chance; c != nil {
		return idx, st.rng.Float64() < *c
	}
	return idx, true
}

// Next decides the reply to the next HTTP capture.
func (st *State) Next() Reply {
	idx, hit := st.next()
	if idx < 0 {
		return Reply{Default: true, Step: -1}
	}
	if !hit {
		return Reply{Default: true, Step: idx}
	}
	s := &st.script.Steps[idx]
	r := Reply{
		Status: s.Status,
		Body:   s.Body,
		Delay:  time.Duration(s.Delay),
		Fault:  s.Fault,
		Step:   idx,
	}
	if len(s.Headers) > 0 {
		r.Headers = maps.Clone(s.Headers)
	}
	r.Default = r.Status == 0 && r.Headers == nil && r.Body == ""
	if !r.Default && r.Status == 0 && r.Fault != FaultGarbage {
		r.Status = 200
	}
	return r
}

// NextSMTP decides the reply to the next e-mail delivery attempt to the bin.
// Call it once per SMTP transaction and bin (at the first RCPT TO naming
// the bin), keep the result for the session, and apply it when the session
// reaches r.At: a step that scripts DATA must not use up a second step.
func (st *State) NextSMTP() SMTPReply {
	idx, hit := st.next()
	if idx < 0 {
		return SMTPReply{Default: true, At: AtRcpt, Step: -1}
	}
	if !hit {
		return SMTPReply{Default: true, At: AtRcpt, Step: idx}
	}
	s := &st.script.Steps[idx]
	r := SMTPReply{
		At:    AtRcpt,
		Delay: time.Duration(s.Delay),
		Fault: s.Fault,
		Step:  idx,
	}
	if sm := s.SMTP; sm != nil {
		r.Code, r.Message = sm.Code, sm.Message
		if sm.At != "" {
			r.At = sm.At
		}
		if r.Message == "" {
			r.Message = smtpText(sm.Code)
		}
	}
	r.Default = r.Code == 0 && r.Delay == 0 && r.Fault == FaultNone
	return r
}

// smtpText is a standard reply text for a code (RFC 5321, section 4.2).
func smtpText(code int) string {
	switch code {
	case 250:
		return "OK"
	case 421:
		return "Service not available, closing transmission channel"
	case 450:
		return "Requested mail action not taken: mailbox unavailable"
	case 451:
		return "Requested action aborted: local error in processing"
	case 452:
		return "Requested action not taken: insufficient system storage"
	case 550:
		return "Requested action not taken: mailbox unavailable"
	case 552:
		return "Requested mail action aborted: exceeded storage allocation"
	case 553:
		return "Requested action not taken: mailbox name not allowed"
	case 554:
		return "Transaction failed"
	}
	switch {
	case code < 300:
		return "OK"
	case code < 400:
		return "Continue"
	case code < 500:
		return "Temporary failure, try again later"
	}
	return "Permanent failure"
}
