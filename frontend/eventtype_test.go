package frontend

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestEventType(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`{"type":"capture","id":1}`, "capture", true},
		{`{"id":1,"type":"attempt"}`, "attempt", true},
		{`{"a":{"type":"inner"},"b":[1,{"c":"]}"}],"type":"outer"}`, "outer", true},
		{`{"s":"a\",\"type\":\"fake","type":"real"}`, "real", true},
		{`{"type":"caf\u00e9"}`, "café", true},
		{`{"type":""}`, "", true},
		{`{"a":{"type":"inner"}}`, "", false},
		{`{"type":1}`, "", false},
		{`{"type":null}`, "", false},
		{`{}`, "", false},
		{`[{"type":"x"}]`, "", false},
		{`"type"`, "", false},
		{`null`, "", false},
		{``, "", false},
		{`{"type":"x`, "", false},
		{`{"a":1`, "", false},
	}
	for _, tt := range tests {
		got, ok := eventType([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("eventType(%s): got %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// refEventType reads the first top-level "type" with encoding/json's
// tokenizer.
func refEventType(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", false
		}
		if key == "type" {
			v, err := dec.Token()
			s, isStr := v.(string)
			return s, err == nil && isStr
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

func FuzzEventType(f *testing.F) {
	for _, s := range []string{`{"type":"capture","id":1}`, `{"a":[1,{"b":"}"}],"type":"t"}`, `{"type":"\u00e9\"x"}`, `{"typ\u0065":"x"}`, `{"type":1}`, `[]`, `{"a":"\\","type":"b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = eventType(in) // must not panic on anything
		if !json.Valid(in) {
			return
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, in); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		got, ok := eventType(data)
		want, wantOK := refEventType(data)
		if ok && (!wantOK || got != want) {
			t.Fatalf("eventType(%s): got %q, true; encoding/json reads %q, %v", data, got, want, wantOK)
		}
		if wantOK && !ok && !bytes.Contains(data, []byte(`\`)) && utf8.Valid(data) {
			t.Fatalf("eventType(%s): got not found; encoding/json reads %q", data, want)
		}
	})
}
