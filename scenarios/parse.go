package scenarios

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Bounds on the work that aliases may cause. A script without aliases stays
// far below both (it is at most MaxSize bytes); a YAML bomb, whose aliases
// expand exponentially, hits one of them after a few thousand steps of work.
const (
	maxNodes = 100_000     // nodes visited, each alias followed counting again
	maxText  = 4 * MaxSize // bytes of scalar text visited, likewise
)

var (
	topFields  = []string{"name", "description", "steps", "after"}
	stepFields = []string{"status", "headers", "body", "delay", "chance", "repeat", "fault", "smtp"}
	smtpFields = []string{"code", "message", "at"}
)

// Parse reads one script from YAML or JSON (JSON is read as YAML) and
// validates it. Unknown fields, wrong types and values out of bounds are
// refused with a *ParseError naming the line, the column and the field; so
// are inputs over MaxSize and aliases that expand beyond a fixed budget.
// The returned script has its defaults filled in (After, SMTP.At).
func Parse(data []byte) (*Script, error) {
	d := &decoder{Decoder{
		Subject: "script", Want: "a mapping with steps",
		MaxSize: MaxSize, MaxNodes: maxNodes, MaxText: maxText,
		JSON: true, Positions: true,
	}}
	root, perr := d.Document(data)
	if perr != nil {
		return nil, perr
	}
	s, perr := d.script(root)
	if perr != nil {
		return nil, perr
	}
	s.normalize()
	if perr := s.validate(); perr != nil {
		perr.Line, perr.Column = d.Position(perr.Field)
		return nil, perr
	}
	return s, nil
}

// decoder reads the parts of a script.
type decoder struct{ Decoder }

func (d *decoder) script(n *yaml.Node) (*Script, *ParseError) {
	s := &Script{}
	err := d.Fields(n, "", topFields, func(key string, _, v *yaml.Node, f string) *ParseError {
		var err *ParseError
		switch key {
		case "name":
			s.Name, err = d.Text(v, f)
		case "description":
			s.Description, err = d.Text(v, f)
		case "after":
			s.After, err = d.Text(v, f)
			if err == nil && s.After == "" {
				err = d.ErrAt(v, f, "want one of last, cycle, default, got \"\"")
			}
		case "steps":
			s.Steps, err = d.steps(v, f)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (d *decoder) steps(n *yaml.Node, field string) ([]Step, *ParseError) {
	steps := make([]Step, len(n.Content))
	err := d.Items(n, field, List{Want: "a list of steps", Noun: "step", Nouns: "steps", Min: 1, Max: MaxSteps},
		func(i int, v *yaml.Node, f string) *ParseError { return d.step(v, f, &steps[i]) })
	if err != nil {
		return nil, err
	}
	return steps, nil
}

func (d *decoder) step(n *yaml.Node, field string, st *Step) *ParseError {
	return d.Fields(n, field, stepFields, func(key string, _, v *yaml.Node, f string) *ParseError {
		switch key {
		case "status":
			i, err := d.Integer(v, f)
			if err != nil {
				return err
			}
			if i < 100 || i > 599 {
				return d.ErrAt(v, f, "%s", statusMsg(int(clamp(i))))
			}
			st.Status = int(i)
		case "repeat":
			i, err := d.Integer(v, f)
			if err != nil {
				return err
			}
			if i < 1 || i > MaxRepeat {
				return d.ErrAt(v, f, "%s", repeatMsg(int(clamp(i))))
			}
			st.Repeat = int(i)
		case "chance":
			c, err := d.Number(v, f)
			if err != nil {
				return err
			}
			st.Chance = &c
		case "delay":
			s, err := d.Text(v, f)
			if err != nil {
				return err
			}
			dur, perr := parseDuration(s)
			if perr != nil {
				return d.ErrAt(v, f, "%v", perr)
			}
			st.Delay = Duration(dur)
		case "body":
			s, err := d.Text(v, f)
			if err != nil {
				return err
			}
			st.Body = s
		case "fault":
			s, err := d.Text(v, f)
			if err != nil {
				return err
			}
			if s == "" || !Fault(s).Valid() {
				return d.ErrAt(v, f, "%s", faultMsg(s))
			}
			st.Fault = Fault(s)
		case "headers":
			if v.Kind == yaml.MappingNode && len(v.Content)/2 > MaxHeaders {
				return d.ErrAt(v, f, "want at most %d entries, got %d", MaxHeaders, len(v.Content)/2)
			}
			h := make(map[string]string)
			err := d.Fields(v, f, nil, func(name string, _, hv *yaml.Node, hf string) *ParseError {
				s, err := d.Text(hv, hf)
				if err != nil {
					return err
				}
				h[name] = s
				return nil
			})
			if err != nil {
				return err
			}
			st.Headers = h
		case "smtp":
			return d.smtp(v, f, st)
		}
		return nil
	})
}

func (d *decoder) smtp(n *yaml.Node, field string, st *Step) *ParseError {
	sm := &SMTPStep{}
	hasCode := false
	err := d.Fields(n, field, smtpFields, func(key string, _, v *yaml.Node, f string) *ParseError {
		var err *ParseError
		switch key {
		case "code":
			var i int64
			if i, err = d.Integer(v, f); err == nil {
				if i < 200 || i > 599 {
					return d.ErrAt(v, f, "%s", smtpCodeMsg(int(clamp(i))))
				}
				sm.Code, hasCode = int(i), true
			}
		case "message":
			sm.Message, err = d.Text(v, f)
		case "at":
			if sm.At, err = d.Text(v, f); err == nil && sm.At != AtRcpt && sm.At != AtData {
				err = d.ErrAt(v, f, "%s", atMsg(sm.At))
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if !hasCode {
		return d.ErrAt(n, field+".code", "missing; want an SMTP code in 200..599")
	}
	st.SMTP = sm
	return nil
}

// clamp keeps an out-of-range number printable as an int on any platform.
func clamp(i int64) int64 {
	const lim = 1 << 31
	switch {
	case i > lim:
		return lim
	case i < -lim:
		return -lim
	}
	return i
}

// jsonForYAML rewrites what valid JSON may hold in its strings but the
// YAML parser does not read: the escape "\/" becomes "/"; a UTF-16
// surrogate pair "\uD83D\uDE00" becomes "\U0001F600" (a lone surrogate
// becomes U+FFFD, as encoding/json reads it); and characters that YAML does
// not allow unescaped (DEL, C1 controls, U+FFFE, U+FFFF) or would read as a
// line break (NEL) become \u escapes.
// data must be valid JSON; line numbers are kept.
func jsonForYAML(data []byte) []byte {
	out := make([]byte, 0, len(data))
	inString := false
	for i := 0; i < len(data); {
		c := data[i]
		if !inString {
			inString = c == '"'
			out = append(out, c)
			i++
			continue
		}
		switch {
		case c == '"':
			inString = false
			out = append(out, c)
			i++
		case c == '\\':
			// Valid JSON guarantees the bytes an escape needs are there.
			switch next := data[i+1]; next {
			case '/':
				out = append(out, '/')
				i += 2
			case 'u':
				r1 := hex4(data[i+2 : i+6])
				switch {
				case !utf16.IsSurrogate(r1):
					out = append(out, data[i:i+6]...)
					i += 6
				case i+12 <= len(data) && data[i+6] == '\\' && data[i+7] == 'u' &&
					utf16.DecodeRune(r1, hex4(data[i+8:i+12])) != utf8.RuneError:
					out = fmt.Appendf(out, `\U%08X`, utf16.DecodeRune(r1, hex4(data[i+8:i+12])))
					i += 12
				default:
					out = append(out, `\uFFFD`...)
					i += 6
				}
			default:
				out = append(out, c, next)
				i += 2
			}
		default:
			r, size := utf8.DecodeRune(data[i:])
			if yamlPrintable(r) {
				out = append(out, data[i:i+size]...)
			} else {
				out = fmt.Appendf(out, `\u%04X`, r)
			}
			i += size
		}
	}
	return out
}

// yamlPrintable reports whether r may stand unescaped in a YAML
// double-quoted scalar and mean itself: YAML 1.2's c-printable, less NEL
// (U+0085), which YAML reads as a line break and folds.
func yamlPrintable(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return true
	case r < 0x20 || (r >= 0x7f && r <= 0x9f):
		return false
	case r == 0xFFFE || r == 0xFFFF:
		return false
	}
	return true
}

func hex4(b []byte) rune {
	v, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return '\uFFFD'
	}
	return rune(v)
}
