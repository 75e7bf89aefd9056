package scenarios

import (
	"errors"
	"io/fs"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes, starting from the ready scripts.
// Whatever the input: no panic; an error is a *ParseError wrapping
// ErrInvalid with a message; a script validates, survives a round trip
// through JSON, and drives a State without a step index out of range.
// (No YAML round trip: yaml.Marshal can write text that its own parser
// refuses, such as a block scalar for the body " 0\"\n".)
func FuzzParse(f *testing.F) {
	files, err := fs.Glob(examples, "examples/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := examples.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`{"steps": [{"status": 500, "repeat": 3}, {"status": 200, "body": "a\/b \ud83d\ude00"}], "after": "cycle"}`,
		"steps: [&a {status: 500, headers: &h {X: y}}, *a, {headers: *h}]",
		"steps: [{delay: -1s}]",
		"steps: [{repeat: 0}]",
		"steps:\n  - <<: {status: 500}\n",
		"steps: [{chance: .nan}]",
		"steps: [{smtp: {code: 451, at: data}, chance: 0.5, delay: 1ms}]\nafter: default",
		"steps: [{fault: garbage, body: \"\\0\\x01\"}]",
		"",
		"~",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) || pe.Msg == "" {
				t.Fatalf("error %T %q: want a *ParseError wrapping ErrInvalid, with a message", err, err)
			}
			if pe.Line < 0 || pe.Column < 0 {
				t.Fatalf("error %q: got line %d column %d, want none negative", err, pe.Line, pe.Column)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse gave a script that does not validate: %v", err)
		}
		checkRoundTrip(t, s)

		st := NewState(s, 1)
		for range 5 {
			if r := st.Next(); r.Step < -1 || r.Step >= len(s.Steps) {
				t.Fatalf("Next: step %d out of 0..%d", r.Step, len(s.Steps)-1)
			}
			if r := st.NextSMTP(); r.Step < -1 || r.Step >= len(s.Steps) || (r.At != AtRcpt && r.At != AtData) {
				t.Fatalf("NextSMTP: got %+v", r)
			}
		}
	})
}
