package frontend

import (
	"encoding/json"
	"unicode/utf8"
)

// eventType returns the value of the top-level "type" member of data, a
// JSON value as json.Marshal writes it (valid, no insignificant space). ok
// is false when data is not an object or its "type" is missing or not a
// string. It stops at "type", which events put first, without decoding the
// rest: Publish calls it for every event.
func eventType(data []byte) (typ string, ok bool) {
	if len(data) < 2 || data[0] != '{' {
		return "", false
	}
	i := 1
	for i < len(data) {
		// At a member's key.
		if data[i] != '"' {
			return "", false // "}" of an object without "type"
		}
		end, escaped := scanString(data, i)
		if end < 0 || end+1 >= len(data) || data[end+1] != ':' {
			return "", false
		}
		key := data[i+1 : end]
		v := end + 2
		if !escaped && string(key) == "type" {
			if v >= len(data) || data[v] != '"' {
				return "", false
			}
			vend, vesc := scanString(data, v)
			if vend < 0 {
				return "", false
			}
			if !vesc {
				if !utf8.Valid(data[v+1 : vend]) {
					return "", false
				}
				return string(data[v+1 : vend]), true
			}
			if err := json.Unmarshal(data[v:vend+1], &typ); err != nil {
				return "", false
			}
			return typ, true
		}
		// Skip the value.
		next := skipValue(data, v)
		if next < 0 || next >= len(data) {
			return "", false
		}
		if data[next] != ',' {
			return "", false
		}
		i = next + 1
	}
	return "", false
}

// scanString returns the index of the closing quote of the string that
// starts at data[i] == '"', and whether it holds an escape; -1 if it does
// not close.
func scanString(data []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j, escaped
		}
	}
	return -1, escaped
}

// skipValue returns the index just after the JSON value that starts at
// data[i], or -1.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	depth := 0
	for j := i; j < len(data); j++ {
		switch data[j] {
		case '"':
			end, _ := scanString(data, j)
			if end < 0 {
				return -1
			}
			j = end
			if depth == 0 {
				return j + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j // end of a scalar just before the enclosing close
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case ',':
			if depth == 0 {
				return j
			}
		}
	}
	if depth == 0 {
		return len(data)
	}
	return -1
}
