package run

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/callbin/callbin/scenarios"
)

// BinInfo is what a template may say of a bin: {{bins.NAME.url}},
// {{bins.NAME.email}}, {{bins.NAME.name}}.
type BinInfo struct {
	Name  string // the real bin name, with the run's prefix
	URL   string // its capture URL
	Email string // its e-mail address
}

// expander replaces the templates of a run file's strings.
type expander map[string]BinInfo // by the bin's name in the file

// expandString replaces every {{bins.NAME.FIELD}} in s. Parse has checked
// the templates, so an unknown one cannot occur; it is left as written.
func (x expander) expandString(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		inner := strings.TrimSpace(rest[i+2 : i+j])
		b.WriteString(x.lookup(inner, rest[i:i+j+2]))
		rest = rest[i+j+2:]
	}
}

func (x expander) lookup(inner, orig string) string {
	parts := strings.Split(inner, ".")
	if len(parts) != 3 || parts[0] != "bins" {
		return orig
	}
	info, ok := x[parts[1]]
	if !ok {
		return orig
	}
	switch parts[2] {
	case "url":
		return info.URL
	case "email":
		return info.Email
	case "name":
		return info.Name
	}
	return orig
}

// expandValue returns a copy of a JSON value with its strings expanded.
func (x expander) expandValue(v any) any {
	switch t := v.(type) {
	case string:
		return x.expandString(t)
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = x.expandValue(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = x.expandValue(e)
		}
		return l
	}
	return v
}

// expandScript returns a copy of s with the templates of its bodies,
// header values and SMTP messages expanded.
func (x expander) expandScript(s *scenarios.Script) *scenarios.Script {
	if s == nil {
		return nil
	}
	c := s.Clone()
	for i := range c.Steps {
		st := &c.Steps[i]
		st.Body = x.expandString(st.Body)
		for k, v := range st.Headers {
			st.Headers[k] = x.expandString(v)
		}
		if st.SMTP != nil {
			st.SMTP.Message = x.expandString(st.SMTP.Message)
		}
	}
	return c
}

// jsonText encodes a JSON value without HTML escaping.
func jsonText(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
