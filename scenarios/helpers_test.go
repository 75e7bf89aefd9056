package scenarios

import (
	"fmt"
	"strings"
	"testing"
)

// MustParse parses a script that the test means to be valid.
func MustParse(tb testing.TB, text string) *Script {
	tb.Helper()
	s, err := Parse([]byte(text))
	if err != nil {
		tb.Fatalf("Parse(%q): got error %v, want none", text, err)
	}
	return s
}

// MustLookup returns a ready script that must exist.
func MustLookup(tb testing.TB, name string) *Script {
	tb.Helper()
	s, ok := Lookup(name)
	if !ok {
		tb.Fatalf("Lookup(%q): got no script, want one", name)
	}
	return s
}

// httpRun describes the next n HTTP replies, one word each: the status, or
// "default", then "+DELAY" and "!FAULT" when set, such as "500",
// "default+15s", "reset", "200!slow".
func httpRun(st *State, n int) string {
	words := make([]string, n)
	for i := range words {
		words[i] = describeReply(st.Next())
	}
	return strings.Join(words, " ")
}

func describeReply(r Reply) string {
	var w string
	switch {
	case r.Fault != FaultNone && r.Status == 0:
		w = string(r.Fault)
	case r.Fault != FaultNone:
		w = fmt.Sprintf("%d!%s", r.Status, r.Fault)
	case r.Default:
		w = "default"
	default:
		w = fmt.Sprint(r.Status)
	}
	if r.Delay != 0 {
		w += "+" + r.Delay.String()
	}
	return w
}

// smtpRun describes the next n e-mail replies: "accept", or CODE@AT, then
// "+DELAY" and "!FAULT" when set, such as "451@rcpt", "421@rcpt!close".
func smtpRun(st *State, n int) string {
	words := make([]string, n)
	for i := range words {
		words[i] = describeSMTP(st.NextSMTP())
	}
	return strings.Join(words, " ")
}

func describeSMTP(r SMTPReply) string {
	if r.Default {
		return "accept"
	}
	var w string
	if r.Code != 0 {
		w = fmt.Sprintf("%d@%s", r.Code, r.At)
	} else {
		w = "@" + r.At
	}
	if r.Delay != 0 {
		w += "+" + r.Delay.String()
	}
	if r.Fault != FaultNone {
		w += "!" + string(r.Fault)
	}
	return w
}
