package inbox_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/callbin/callbin/inbox"
)

// crlf turns the \n of a message written in Go source into \r\n.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// pdfBytes are the bytes of a binary attachment used in several tests:
// every byte value, so that any re-encoding shows.
func pdfBytes() []byte {
	b := []byte("%PDF-1.4\n")
	for i := 0; i < 512; i++ {
		b = append(b, byte(i))
	}
	return b
}

// wrap64 is base64 in lines of 76 characters, as mailers send it.
func wrap64(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	out.WriteString(s + "\n")
	return out.String()
}

func multipartMessage() string {
	return crlf(`From: =?UTF-8?B?SsO2cmc=?= <jorg@example.com>
To: hook@callbin.local, "Second" <second@example.com>
Cc: cc@example.com
Subject: =?ISO-8859-1?Q?R=E9sum=E9?= of task 42
Date: Tue, 3 Jun 2025 10:00:00 +0200
Message-ID: <m1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

Hello in text
--alt
Content-Type: text/html; charset=utf-8

<p>Hello in <b>HTML</b></p>
--alt--
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

`) + crlf(wrap64(pdfBytes())) + crlf(`--outer
Content-Type: text/csv; charset=iso-8859-1; name="caf=E9.csv"
Content-Disposition: attachment; filename="../../etc/caf.csv"
Content-Transfer-Encoding: quoted-printable

name,price
caf=E9,2=
.50
--outer--
`)
}

func TestParseEmail(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want inbox.Email
	}{
		{
			name: "multipart with attachments",
			raw:  multipartMessage(),
			want: inbox.Email{
				From:    "Jörg <jorg@example.com>",
				To:      []string{"hook@callbin.local", "Second <second@example.com>"},
				Subject: "Résumé of task 42",
				Date:    "2025-06-03T10:00:00+02:00",
				Text:    "Hello in text",
				HTML:    "<p>Hello in <b>HTML</b></p>",
				Attachments: []inbox.Attachment{
					{Name: "report.pdf", Type: "application/pdf", Size: int64(len(pdfBytes()))},
					{Name: "../../etc/caf.csv", Type: "text/csv", Size: int64(len("name,price\r\ncaf\xe9,2.50"))},
				},
			},
		},
		{
			name: "plain text, no MIME",
			raw:  crlf("From: a@example.com\nTo: b@example.com\nSubject: hi\n\nbody line\n"),
			want: inbox.Email{From: "a@example.com", To: []string{"b@example.com"}, Subject: "hi", Text: "body line\r\n", Attachments: []inbox.Attachment{}},
		},
		{
			name: "CR LF smuggled through encoded words",
			raw: crlf("From: =?utf-8?q?Eve=0D=0ABcc:_x@evil.example?= <eve@example.com>\n" +
				"To: =?utf-8?q?a=0D=0A?= <a@example.com>\n" +
				"Subject: =?utf-8?q?hi=0D=0ABcc:_victim@example.com?=\n\nx\n"),
			want: inbox.Email{
				From: "Eve  Bcc: x@evil.example <eve@example.com>", To: []string{"a <a@example.com>"},
				Subject: "hi  Bcc: victim@example.com", Text: "x\r\n", Attachments: []inbox.Attachment{},
			},
		},
		{
			name: "invalid UTF-8 in header and body",
			raw:  crlf("From: a@example.com\nSubject: caf\xe9 \xff\nContent-Type: text/plain; charset=utf-8\n\nbad \xff\xfe bytes\n"),
			want: inbox.Email{From: "a@example.com", To: []string{}, Subject: "caf\uFFFD \uFFFD", Text: "bad \uFFFD bytes\r\n", Attachments: []inbox.Attachment{}},
		},
		{
			name: "huge declared sizes are not trusted",
			raw: crlf(`From: a@example.com
Content-Length: 99999999999999
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="big.bin"; size=99999999999999
Content-Length: 99999999999999

tiny
--b--
`),
			want: inbox.Email{
				From: "a@example.com", To: []string{},
				Attachments: []inbox.Attachment{{Name: "big.bin", Type: "application/octet-stream", Size: 4}},
			},
		},
		{
			name: "a JSON callback is the text",
			raw:  crlf("From: callbin@callbin.local\nSubject: task\nContent-Type: application/json; charset=utf-8\n\n{\"task_id\":\"42\"}\n"),
			want: inbox.Email{From: "callbin@callbin.local", To: []string{}, Subject: "task", Text: `{"task_id":"42"}`, Attachments: []inbox.Attachment{}},
		},
		{
			name: "a JSON file sent as an attachment stays one",
			raw:  crlf("Subject: file\nContent-Type: application/json\nContent-Disposition: attachment; filename=a.json\n\n{}\n"),
			want: inbox.Email{To: []string{}, Subject: "file", Attachments: []inbox.Attachment{{Name: "a.json", Type: "application/json", Size: 4}}},
		},
		{
			name: "unparseable date and address kept as text",
			raw:  crlf("From: not an address\nDate: yesterday-ish\n\n"),
			want: inbox.Email{From: "not an address", To: []string{}, Date: "yesterday-ish", Attachments: []inbox.Attachment{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := inbox.ParseEmail([]byte(tt.raw))
			if got.ParseError != "" {
				t.Errorf("parse error %q, want none", got.ParseError)
			}
			// Where a part ends is the parser's call: compare without the
			// final line break.
			got.Text, tt.want.Text = strings.TrimRight(got.Text, "\r\n"), strings.TrimRight(tt.want.Text, "\r\n")
			got.HTML, tt.want.HTML = strings.TrimRight(got.HTML, "\r\n"), strings.TrimRight(tt.want.HTML, "\r\n")
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if !bytes.Equal(g, w) {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func TestParseEmailHeaders(t *testing.T) {
	raw := crlf("From mbox-line Tue Jun  3 10:00:00 2025\nReceived: from a\n\tby b\nX-Dup: 1\nSubject: =?utf-8?q?caf=C3=A9?=\nX-Dup: 2\nbroken line without colon\nX-Bare-CR: a\rb\n\nX-Body: not a header\n")
	got := inbox.ParseEmailHeaders([]byte(raw))
	want := []inbox.Header{{"Received", "from a\tby b"}, {"X-Dup", "1"}, {"Subject", "=?utf-8?q?caf=C3=A9?="}, {"X-Dup", "2"}, {"X-Bare-CR", "a b"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	var many strings.Builder
	for i := 0; i < inbox.MaxEmailHeaders+5; i++ {
		fmt.Fprintf(&many, "X-N: %d\r\n", i)
	}
	many.WriteString("\r\nbody\r\n")
	if got := inbox.ParseEmailHeaders([]byte(many.String())); len(got) != inbox.MaxEmailHeaders {
		t.Errorf("got %d header fields, want %d", len(got), inbox.MaxEmailHeaders)
	}
	if e := inbox.ParseEmail([]byte(many.String())); !strings.Contains(e.ParseError, "header fields") {
		t.Errorf("got parse error %q, want one about header fields", e.ParseError)
	}
}

// deepMessage nests n multipart containers.
func deepMessage(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n", i-1, i)
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain\r\n\r\nhello\r\n", n)
	for i := n; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.Bytes()
}

// wideMessage has n sibling parts.
func wideMessage(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nSubject: wide\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "--b\r\nContent-Type: application/octet-stream\r\n\r\npart %d\r\n", i)
	}
	b.WriteString("--b--\r\n")
	return b.Bytes()
}

// TestParseEmailBombs: messages built to make a MIME parser work for
// minutes (unbounded, the wide one takes over three minutes here) are kept
// raw with a parse error, fast; their header is still read.
func TestParseEmailBombs(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 20<<20)
	tests := []struct {
		name string
		raw  []byte
	}{
		{"deep nesting", deepMessage(3000)},
		{"many parts", wideMessage(100_000)},
		{"deep enough for its size", append(deepMessage(20), big...)},
		{"multipart without boundary, many dash lines", []byte(crlf("Subject: wide\nContent-Type: multipart/mixed\n\n" + strings.Repeat("-- x\n", 5000)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			e := inbox.ParseEmail(tt.raw)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s, want well under 5s", d)
			}
			if !strings.Contains(e.ParseError, "kept raw") {
				t.Errorf("got parse error %q, want one saying the message is kept raw", e.ParseError)
			}
			if e.Subject == "" {
				t.Errorf("got no subject, want the header read anyway")
			}
			if _, _, err := inbox.EmailAttachment(tt.raw, 0); !errors.Is(err, inbox.ErrNotFound) {
				t.Errorf("got %v, want ErrNotFound for an attachment of an unparsed message", err)
			}
		})
	}
	// Within the bounds, the same shapes parse.
	for _, raw := range [][]byte{deepMessage(10), wideMessage(200)} {
		if e := inbox.ParseEmail(raw); e.ParseError != "" {
			t.Errorf("got parse error %q for a message within the bounds, want none", e.ParseError)
		}
	}
	if e := inbox.ParseEmail(wideMessage(200)); len(e.Attachments) != 200 {
		t.Errorf("got %d attachments, want 200", len(e.Attachments))
	}
}

// TestParseEmailUnparseable: what the MIME parser refuses is still an Email,
// with the header read and the error said.
func TestParseEmailUnparseable(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"multipart without a boundary", "Subject: broken\nContent-Type: multipart/mixed\n\nx\n", "boundary"},
		{"part header that is not one", "Subject: broken\nContent-Type: multipart/mixed; boundary=b\n\n--b\nbad header line\n\nx\n--b--\n", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := inbox.ParseEmail([]byte(crlf(tt.raw)))
			if e.Subject != "broken" {
				t.Errorf("got subject %q, want %q", e.Subject, "broken")
			}
			if !strings.Contains(e.ParseError, tt.want) {
				t.Errorf("got parse error %q, want one about %q", e.ParseError, tt.want)
			}
		})
	}
}

func TestEmailAttachmentBytes(t *testing.T) {
	raw := []byte(multipartMessage())
	a, data, err := inbox.EmailAttachment(raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, pdfBytes()) || a.Name != "report.pdf" || a.Type != "application/pdf" {
		t.Errorf("got %q (%s, %d bytes), want report.pdf, application/pdf, the PDF bytes", a.Name, a.Type, len(data))
	}
	// A text attachment comes back in its own charset, not converted.
	_, data, err = inbox.EmailAttachment(raw, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "name,price\r\ncaf\xe9,2.50"; string(data) != want {
		t.Errorf("got %q, want %q", data, want)
	}
	if _, _, err := inbox.EmailAttachment(raw, 2); !errors.Is(err, inbox.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
	if _, _, err := inbox.EmailAttachment(raw, -1); !errors.Is(err, inbox.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

// addEmail stores raw as an e-mail capture in bin, as the SMTP sink does.
func addEmail(tb testing.TB, s *inbox.Store, bin string, raw []byte) *inbox.Capture {
	tb.Helper()
	c := &inbox.Capture{
		Bin: bin, Kind: inbox.KindEmail, Method: "DATA", Path: bin + "@callbin.local", Proto: "ESMTP",
		Headers: inbox.ParseEmailHeaders(raw), Body: raw, Size: int64(len(raw)), RemoteAddr: "127.0.0.1:1",
		ReceivedAt: time.Now(), Reply: inbox.Reply{SMTPCode: 250}, Email: inbox.ParseEmail(raw),
	}
	if err := s.Add(context.Background(), c); err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestAttachmentRoute(t *testing.T) {
	srv := MustServe(t, nil)
	raw := multipartMessage() + "" // the CSV is named ../../etc/caf.csv
	c := addEmail(t, srv.Store, "mail", []byte(raw))
	withCID := crlf("Subject: cid\nContent-Type: multipart/related; boundary=r\n\n--r\nContent-Type: text/html\n\n<img src=cid:x>\n--r\nContent-Type: image/png\nContent-ID: <../../../etc/passwd>\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--r--\n")
	cid := addEmail(t, srv.Store, "mail", []byte(withCID))
	status, body := do(t, "POST", srv.URL+"/b/mail/x", []byte("not mail"))
	if status != 200 {
		t.Fatalf("capture: got %d, want 200", status)
	}
	var httpCap struct {
		Items []capture `json:"items"`
	}
	_, body = do(t, "GET", srv.URL+"/api/v1/bins/mail/captures?kind=http", nil)
	mustJSON(t, body, &httpCap)

	// The capture JSON points at the route.
	_, body = do(t, "GET", fmt.Sprintf("%s/api/v1/bins/mail/captures/%d", srv.URL, c.ID), nil)
	var got struct {
		Email inbox.Email `json:"email"`
	}
	mustJSON(t, body, &got)
	if len(got.Email.Attachments) != 2 {
		t.Fatalf("got %d attachments in %s, want 2", len(got.Email.Attachments), body)
	}

	tests := []struct {
		name     string
		url      string
		status   int
		body     []byte
		ctype    string
		filename string
	}{
		{"pdf", srv.URL + got.Email.Attachments[0].URL, 200, pdfBytes(), "application/pdf", `attachment; filename=report.pdf`},
		{"dot-dot name", srv.URL + got.Email.Attachments[1].URL, 200, []byte("name,price\r\ncaf\xe9,2.50"), "text/csv", `attachment; filename=caf.csv`},
		{"content-id with dot-dots", fmt.Sprintf("%s/api/v1/bins/mail/captures/%d/attachments/0", srv.URL, cid.ID), 200, []byte("\x89PNG\r\n\x1a\n"), "image/png", `attachment; filename=attachment-1`},
		{"past the last", fmt.Sprintf("%s/api/v1/bins/mail/captures/%d/attachments/2", srv.URL, c.ID), 404, nil, "", ""},
		{"negative", fmt.Sprintf("%s/api/v1/bins/mail/captures/%d/attachments/-1", srv.URL, c.ID), 404, nil, "", ""},
		{"not a number", fmt.Sprintf("%s/api/v1/bins/mail/captures/%d/attachments/x", srv.URL, c.ID), 400, nil, "", ""},
		{"not an e-mail", fmt.Sprintf("%s/api/v1/bins/mail/captures/%d/attachments/0", srv.URL, httpCap.Items[0].ID), 404, nil, "", ""},
		{"unknown capture", srv.URL + "/api/v1/bins/mail/captures/999999/attachments/0", 404, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, b, tt.status)
			}
			if tt.status != 200 {
				var e inbox.ErrorBody
				mustJSON(t, b, &e)
				if e.Error.Message == "" {
					t.Errorf("got error body %s, want a message", b)
				}
				return
			}
			if !bytes.Equal(b, tt.body) {
				t.Errorf("got body %q, want %q", b, tt.body)
			}
			for name, want := range map[string]string{
				"Content-Type":            tt.ctype,
				"Content-Disposition":     tt.filename,
				"X-Content-Type-Options":  "nosniff",
				"Content-Security-Policy": "sandbox; default-src 'none'",
			} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("%s: got %q, want %q", name, got, want)
				}
			}
		})
	}
}

// FuzzParseEmail: whatever the message, ParseEmail returns an Email whose
// strings are valid UTF-8, whose one-line fields hold no control
// characters, and whose attachments are each served, with the size listed.
func FuzzParseEmail(f *testing.F) {
	f.Add([]byte(multipartMessage()))
	f.Add([]byte(crlf("From: =?utf-8?q?a=0D=0A?= <a@b>\nSubject: =?bogus?x?zz?=\n\n\xff\xfe")))
	f.Add(deepMessage(5))
	f.Add(wideMessage(5))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n-- \r\n\r\n--\r\n"))
	f.Add([]byte("Content-Type: text/plain; charset=iso-2022-jp\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=1B$B=\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 64<<10 {
			return
		}
		start := time.Now()
		e := inbox.ParseEmail(raw)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("parsing %d bytes took %s", len(raw), d)
		}
		oneLine := append([]string{e.From, e.Subject, e.Date}, e.To...)
		for _, a := range e.Attachments {
			oneLine = append(oneLine, a.Name, a.Type)
		}
		for _, s := range oneLine {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("one-line field %q is not clean text", s)
			}
		}
		for _, s := range []string{e.Text, e.HTML, e.ParseError} {
			if !utf8.ValidString(s) {
				t.Fatalf("field %q is not valid UTF-8", s)
			}
		}
		for _, h := range inbox.ParseEmailHeaders(raw) {
			if !utf8.ValidString(h[0]+h[1]) || strings.ContainsAny(h[0]+h[1], "\r\n") {
				t.Fatalf("header %q is not clean", h)
			}
		}
		for i, a := range e.Attachments {
			got, data, err := inbox.EmailAttachment(raw, i)
			if err != nil {
				t.Fatalf("attachment %d of %d: %v", i, len(e.Attachments), err)
			}
			if int64(len(data)) != a.Size || got.Name != a.Name || got.Type != a.Type {
				t.Fatalf("attachment %d: got %q %s %d bytes, want %q %s %d", i, got.Name, got.Type, len(data), a.Name, a.Type, a.Size)
			}
		}
		if _, _, err := inbox.EmailAttachment(raw, len(e.Attachments)); !errors.Is(err, inbox.ErrNotFound) {
			t.Fatalf("attachment %d of %d: got %v, want ErrNotFound", len(e.Attachments), len(e.Attachments), err)
		}
	})
}
