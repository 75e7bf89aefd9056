package inbox

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzParseHeaderBlock: whatever a client sends, the parser does not panic,
// and what it accepts keeps every field, in order, with no CR or LF inside.
func FuzzParseHeaderBlock(f *testing.F) {
	f.Add("POST /b/x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-A: 2\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\n folded: x\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\nNoColon\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\n: empty\r\n\r\n")
	f.Fuzz(func(t *testing.T, block string) {
		hs, ok := parseHeaderBlock([]byte(block))
		if !ok {
			return
		}
		for _, h := range hs {
			if h[0] == "" || strings.ContainsAny(h[0], " \t\r\n:") || strings.ContainsAny(h[1], "\r\n") {
				t.Fatalf("accepted field %q from %q", h, block)
			}
		}
		if want := strings.Count(strings.TrimSuffix(block, "\r\n\r\n"), "\r\n"); len(hs) != want {
			t.Fatalf("got %d fields, want %d, from %q", len(hs), want, block)
		}
	})
}

// FuzzSplitBinPath: a bin name taken from a path is always a valid,
// normalized name, or an ErrInvalid error.
func FuzzSplitBinPath(f *testing.F) {
	for _, p := range []string{"/b/hook", "/b/Hook/x/y", "/b/%2e%2e/x", "/b/a%2Fb", "/b/%ff", "/b/", "/x", "/b/a..b"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		name, err := splitBinPath(path)
		if err != nil {
			if errorStatusOf(err) != http.StatusBadRequest {
				t.Fatalf("%q: error %v is not a 400", path, err)
			}
			return
		}
		again, err := NormalizeBinName(name)
		if err != nil || again != name {
			t.Fatalf("%q: name %q does not normalize to itself (%q, %v)", path, name, again, err)
		}
		if strings.ContainsAny(name, "/%.") && strings.Contains(name, "..") {
			t.Fatalf("%q: name %q", path, name)
		}
	})
}

func errorStatusOf(err error) int {
	status, _ := errorStatus(err)
	return status
}

// FuzzHeaderEncoding: header fields of any bytes come back as they went in,
// and no stored bytes make the decoder panic.
func FuzzHeaderEncoding(f *testing.F) {
	f.Add("X-A", "1", "X-\xff", "\x00\xfe")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		hs := []Header{{n1, v1}, {n2, v2}}
		got, err := decodeHeaders(encodeHeaders(hs))
		if err != nil || len(got) != 2 || got[0] != hs[0] || got[1] != hs[1] {
			t.Fatalf("got %q, %v; want %q", got, err, hs)
		}
		decodeHeaders([]byte(n1 + v1)) // arbitrary bytes: an error or fields, never a panic
	})
}
