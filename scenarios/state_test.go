package scenarios

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStateSequences(t *testing.T) {
	tests := []struct {
		name   string
		script string // "" for no script
		seed   int64
		n      int
		want   string
	}{
		{"no script", "", 1, 3, "default default default"},
		{"after last", "steps: [{status: 500, repeat: 3}, {status: 200}]\nafter: last", 1, 6, "500 500 500 200 200 200"},
		{"after left out is last", "steps: [{status: 500}, {status: 201}]", 1, 4, "500 201 201 201"},
		{"last step repeats", "steps: [{status: 500, repeat: 2}, {status: 201, repeat: 2}]", 1, 6, "500 500 201 201 201 201"},
		{"after cycle", "steps: [{status: 500}, {status: 502, repeat: 2}]\nafter: cycle", 1, 7, "500 502 502 500 502 502 500"},
		{"after cycle one step", "steps: [{status: 418}]\nafter: cycle", 1, 3, "418 418 418"},
		{"after default", "steps: [{status: 503, repeat: 2}]\nafter: default", 1, 4, "503 503 default default"},
		{"repeat 1 is one", "steps: [{status: 500, repeat: 1}, {status: 200}]", 1, 3, "500 200 200"},
		{"empty step is default", "steps: [{}, {status: 500}]", 1, 3, "default 500 500"},
		{"delay only keeps default", "steps: [{delay: 15s}]", 1, 2, "default+15s default+15s"},
		{"status with delay", "steps: [{status: 200, delay: 250ms}]", 1, 1, "200+250ms"},
		{"headers only is 200", "steps: [{headers: {X-A: b}}]", 1, 1, "200"},
		{"body only is 200", "steps: [{body: hi}]", 1, 1, "200"},
		{"faults", "steps: [{fault: reset}, {fault: close}, {fault: hang}, {fault: garbage}, {fault: slow, status: 201}, {fault: slow}]", 1, 6,
			"reset close hang garbage 201!slow slow"},
		{"fault after delay", "steps: [{fault: reset, delay: 2s}]", 1, 1, "reset+2s"},
		{"garbage with body has no status", "steps: [{fault: garbage, body: xx}]", 1, 1, "garbage"},
		{"smtp-only step is default for http", "steps: [{smtp: {code: 451}}, {status: 500}]", 1, 2, "default 500"},
		{"chance 0 never applies", "steps: [{status: 500, chance: 0}]", 7, 5, "default default default default default"},
		{"chance 1 always applies", "steps: [{status: 500, chance: 1}]", 7, 5, "500 500 500 500 500"},
		{"chance miss still uses the step", "steps: [{status: 500, chance: 0, repeat: 2}, {status: 201}]\nafter: default", 3, 4, "default default 201 default"},
		// Fixed seeds give fixed draws: these lines pin the generator, so a
		// change of it (which would change every recorded run) shows here.
		{"chance seed 1", "steps: [{status: 500, chance: 0.5}]", 1, 10, "500 default default default default 500 default default default default"},
		{"chance seed 2", "steps: [{status: 500, chance: 0.5}]", 2, 10, "default default default 500 default 500 default 500 default 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *Script
			if tt.script != "" {
				s = MustParse(t, tt.script)
			}
			st := NewState(s, tt.seed)
			if got := httpRun(st, tt.n); got != tt.want {
				t.Errorf("replies: got %q, want %q", got, tt.want)
			}
			if got := st.Attempts(); got != int64(tt.n) {
				t.Errorf("Attempts: got %d, want %d", got, tt.n)
			}
			st.Reset()
			if got := httpRun(st, tt.n); got != tt.want {
				t.Errorf("replies after Reset: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStateSMTPSequences(t *testing.T) {
	tests := []struct {
		name   string
		script string
		n      int
		want   string
	}{
		{"greylist", "steps: [{smtp: {code: 451, at: rcpt}, repeat: 2}, {}]", 4, "451@rcpt 451@rcpt accept accept"},
		{"at defaults to rcpt", "steps: [{smtp: {code: 550}}]", 1, "550@rcpt"},
		{"at data", "steps: [{smtp: {code: 452, at: data}}, {}]\nafter: last", 3, "452@data accept accept"},
		{"code then close", "steps: [{smtp: {code: 421}, fault: close}]", 1, "421@rcpt!close"},
		{"drop without reply", "steps: [{fault: reset}]", 1, "@rcpt!reset"},
		{"delay applies to e-mail", "steps: [{status: 200, delay: 3s}]", 1, "@rcpt+3s"},
		{"http-only step accepts e-mail", "steps: [{status: 500}]", 2, "accept accept"},
		{"cycle", "steps: [{smtp: {code: 451}}, {}]\nafter: cycle", 4, "451@rcpt accept 451@rcpt accept"},
		{"after default", "steps: [{smtp: {code: 550}}]\nafter: default", 2, "550@rcpt accept"},
		{"chance 0", "steps: [{smtp: {code: 550}, chance: 0}]", 2, "accept accept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewState(MustParse(t, tt.script), 1)
			if got := smtpRun(st, tt.n); got != tt.want {
				t.Errorf("replies: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStateSMTPMessage(t *testing.T) {
	st := NewState(MustParse(t, "steps: [{smtp: {code: 451}}, {smtp: {code: 550, message: go away}}]"), 1)
	r := st.NextSMTP()
	if r.Message != smtpText(451) || r.Message == "" {
		t.Errorf("default message: got %q, want %q", r.Message, smtpText(451))
	}
	if r = st.NextSMTP(); r.Message != "go away" {
		t.Errorf("scripted message: got %q, want %q", r.Message, "go away")
	}
	if r.Step != 1 {
		t.Errorf("Step: got %d, want 1", r.Step)
	}
}

// HTTP and e-mail attempts to one bin use up steps from one counter.
func TestStateSharedCounter(t *testing.T) {
	st := NewState(MustLookup(t, "greylist"), 1)
	if got := describeReply(st.Next()); got != "default" {
		t.Errorf("HTTP on a greylist step: got %q, want %q", got, "default")
	}
	if got := smtpRun(st, 3); got != "451@rcpt accept accept" {
		t.Errorf("e-mail after one HTTP attempt: got %q, want %q", got, "451@rcpt accept accept")
	}
	if got := st.Attempts(); got != 4 {
		t.Errorf("Attempts: got %d, want 4", got)
	}
}

func TestStateStepIndex(t *testing.T) {
	st := NewState(MustParse(t, "steps: [{status: 500, repeat: 2}, {status: 200}]\nafter: default"), 1)
	var got []int
	for range 4 {
		got = append(got, st.Next().Step)
	}
	want := []int{0, 0, 1, -1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Step indexes: got %v, want %v", got, want)
		}
	}
}

func TestStateSameSeedSameRun(t *testing.T) {
	s := MustLookup(t, "flaky-30")
	a, b := NewState(s, 42), NewState(s, 42)
	runA, runB := httpRun(a, 200), httpRun(b, 200)
	if runA != runB {
		t.Fatalf("same seed: got runs\n%s\n%s\nwant them equal", runA, runB)
	}
	if other := httpRun(NewState(s, 43), 200); other == runA {
		t.Errorf("seeds 42 and 43: got the same 200 draws, want different runs")
	}
	// E-mail attempts draw from the same source: the interleaving is
	// reproducible too.
	c, d := NewState(s, 9), NewState(s, 9)
	for i := range 50 {
		if i%3 == 0 {
			if x, y := c.NextSMTP(), d.NextSMTP(); x != y {
				t.Fatalf("attempt %d (e-mail): got %+v and %+v, want equal", i, x, y)
			}
			continue
		}
		if x, y := describeReply(c.Next()), describeReply(d.Next()); x != y {
			t.Fatalf("attempt %d: got %q and %q, want equal", i, x, y)
		}
	}
}

func TestStateChanceRate(t *testing.T) {
	st := NewState(MustLookup(t, "flaky-30"), 5)
	const n = 20000
	fails := 0
	for range n {
		if r := st.Next(); !r.Default {
			if r.Status != 500 {
				t.Fatalf("status: got %d, want 500", r.Status)
			}
			fails++
		}
	}
	if rate := float64(fails) / n; rate < 0.28 || rate > 0.32 {
		t.Errorf("failure rate over %d attempts: got %.3f, want 0.30±0.02", n, rate)
	}
}

func TestStateLargeRepeat(t *testing.T) {
	st := NewState(MustParse(t, "steps: [{status: 500, repeat: 1000000}, {status: 200}]\nafter: cycle"), 1)
	for i := range 1_000_000 {
		if r := st.Next(); r.Status != 500 {
			t.Fatalf("attempt %d: got %d, want 500", i+1, r.Status)
		}
	}
	if got := httpRun(st, 3); got != "200 500 500" {
		t.Errorf("after a million: got %q, want %q", got, "200 500 500")
	}
}

func TestStateRepliesAreCopies(t *testing.T) {
	s := MustParse(t, "steps: [{status: 429, headers: {Retry-After: 30}}]")
	st := NewState(s, 1)
	s.Steps[0].Status = 200 // the State keeps its own copy
	s.Steps[0].Headers["Retry-After"] = "1"
	r := st.Next()
	if r.Status != 429 || r.Headers["Retry-After"] != "30" {
		t.Fatalf("after the caller changed its script: got %d %v, want 429 Retry-After 30", r.Status, r.Headers)
	}
	r.Headers["Retry-After"] = "changed"
	if got := st.Next().Headers["Retry-After"]; got != "30" {
		t.Errorf("after the caller changed a reply: got Retry-After %q, want %q", got, "30")
	}
	sc := st.Script()
	sc.Steps[0].Status = 201
	if got := st.Next().Status; got != 429 {
		t.Errorf("after the caller changed Script(): got %d, want 429", got)
	}
}

func TestStateConcurrent(t *testing.T) {
	st := NewState(MustLookup(t, "fail-3-then-ok"), 1)
	const workers, each = 8, 500
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := map[int]int{}
			for i := range each {
				if i%5 == 0 {
					st.NextSMTP()
					local[0]++
					continue
				}
				local[st.Next().Status]++
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range local {
				counts[k] += v
			}
		})
	}
	wg.Wait()
	if got := st.Attempts(); got != workers*each {
		t.Errorf("Attempts: got %d, want %d", got, workers*each)
	}
	// Exactly three attempts used up the 500 step; some of them may have
	// been e-mail ones, which see a default reply.
	if got := counts[500]; got > 3 {
		t.Errorf("500 replies: got %d, want at most 3", got)
	}
	if got := counts[200] + counts[500] + counts[0]; got != workers*each {
		t.Errorf("replies seen: got %d, want %d", got, workers*each)
	}
	st.Reset()
	if got := httpRun(st, 4); got != "500 500 500 200" {
		t.Errorf("after Reset: got %q, want %q", got, "500 500 500 200")
	}
}

// A State tolerates a hand-built script that skipped Validate: repeat below
// one counts as one, and an unknown After as last.
func TestStateHandBuilt(t *testing.T) {
	s := &Script{Steps: []Step{{Status: 500, Repeat: -3}, {Status: 201}}, After: "sometimes"}
	if got := httpRun(NewState(s, 1), 3); got != "500 201 201" {
		t.Errorf("got %q, want %q", got, "500 201 201")
	}
	if got := httpRun(NewState(&Script{}, 1), 2); got != "default default" {
		t.Errorf("no steps: got %q, want %q", got, "default default")
	}
}

func TestDescribeHelpers(t *testing.T) {
	// The helpers above turn replies into words; make sure they tell
	// apart what the tests compare.
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{Default: true}, "default"},
		{Reply{Status: 500}, "500"},
		{Reply{Default: true, Delay: time.Second}, "default+1s"},
		{Reply{Default: true, Fault: FaultReset}, "reset"},
		{Reply{Status: 200, Fault: FaultSlow}, "200!slow"},
	}
	for _, tt := range tests {
		if got := describeReply(tt.r); got != tt.want {
			t.Errorf("describeReply(%+v): got %q, want %q", tt.r, got, tt.want)
		}
	}
	if got := describeSMTP(SMTPReply{Code: 451, At: AtData, Fault: FaultClose}); !strings.Contains(got, "451@data!close") {
		t.Errorf("describeSMTP: got %q, want %q", got, "451@data!close")
	}
}
