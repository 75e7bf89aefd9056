package smtpsink_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// apiCapture is the part of the capture JSON these tests read.
type apiCapture struct {
	ID    int64  `json:"id"`
	Kind  string `json:"kind"`
	Path  string `json:"path"`
	Proto string `json:"proto"`
	Reply struct {
		SMTPCode int `json:"smtp_code"`
	} `json:"reply"`
	Email struct {
		From        string   `json:"from"`
		To          []string `json:"to"`
		Subject     string   `json:"subject"`
		Text        string   `json:"text"`
		MailFrom    string   `json:"mail_from"`
		RcptTo      []string `json:"rcpt_to"`
		ParseError  string   `json:"parse_error"`
		Attachments []struct {
			Name string `json:"name"`
			Type string `json:"type"`
			Size int64  `json:"size"`
			URL  string `json:"url"`
		} `json:"attachments"`
	} `json:"email"`
}

// onlyEmail fetches the one e-mail capture of bin through the API.
func onlyEmail(tb testing.TB, api, bin string) apiCapture {
	tb.Helper()
	var list struct {
		Items []apiCapture `json:"items"`
	}
	getJSON(tb, api+"/api/v1/bins/"+bin+"/captures?kind=email", &list)
	if len(list.Items) != 1 {
		tb.Fatalf("got %d e-mail captures in %s, want 1", len(list.Items), bin)
	}
	var c apiCapture
	getJSON(tb, fmt.Sprintf("%s/api/v1/bins/%s/captures/%d", api, bin, list.Items[0].ID), &c)
	return c
}

// download GETs url and returns the body and the response headers.
func download(tb testing.TB, url string) ([]byte, http.Header) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != 200 {
		tb.Fatalf("GET %s: got %d %s, want 200", url, resp.StatusCode, b)
	}
	return b, resp.Header
}

// attachmentBytes are every byte value, twice, so that any re-encoding
// shows.
func attachmentBytes() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// TestAttachmentsThroughAPI: a message with an attachment whose name
// climbs directories comes back intact through the API, under a safe name.
func TestAttachmentsThroughAPI(t *testing.T) {
	srv := MustServe(t, nil)
	api := serveAPI(t, srv)
	data := attachmentBytes()
	msg := "From: a@example.com\r\nTo: att@callbin.local\r\nSubject: with attachment\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n" +
		"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n" +
		"--XX\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\n" +
		"Content-Disposition: attachment; filename=\"../../../../tmp/evil.bin\"\r\n" +
		"Content-ID: <../../cid@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(data) + "\r\n--XX--\r\n"
	c := MustDial(t, srv)
	if _, err := send(c, "a@example.com", []string{"att@callbin.local"}, msg); err != nil {
		t.Fatal(err)
	}
	got := onlyEmail(t, api, "att")
	if len(got.Email.Attachments) != 1 {
		t.Fatalf("got %d attachments, want 1", len(got.Email.Attachments))
	}
	a := got.Email.Attachments[0]
	if a.Name != "../../../../tmp/evil.bin" || a.Type != "application/octet-stream" || a.Size != int64(len(data)) {
		t.Errorf("got %q %s %d, want the name as sent, application/octet-stream, %d", a.Name, a.Type, a.Size, len(data))
	}
	b, h := download(t, api+a.URL)
	if !bytes.Equal(b, data) {
		t.Errorf("downloaded %d bytes that differ from the %d sent", len(b), len(data))
	}
	if cd := h.Get("Content-Disposition"); cd != "attachment; filename=evil.bin" {
		t.Errorf("got Content-Disposition %q, want the last path element only", cd)
	}
	raw, _ := download(t, fmt.Sprintf("%s/api/v1/bins/att/captures/%d/raw", api, got.ID))
	if string(raw) != msg {
		t.Errorf("raw: got %d bytes, want the %d sent, byte for byte", len(raw), len(msg))
	}
}

// TestSwaks: swaks, a client that is not ours, sends a multipart message
// with an attachment (authenticating with LOGIN, pipelining), and the API
// returns it intact.
func TestSwaks(t *testing.T) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		if os.Getenv("CALLBIN_REQUIRE_SWAKS") == "1" {
			t.Fatal("swaks is not installed and CALLBIN_REQUIRE_SWAKS=1: install it (Debian: apt-get install swaks)")
		}
		t.Skip("swaks is not installed (Debian: apt-get install swaks); CALLBIN_REQUIRE_SWAKS=1 makes this a failure")
	}
	srv := MustServe(t, nil)
	api := serveAPI(t, srv)
	dir := t.TempDir()
	data := append([]byte("%PDF-1.4\n"), attachmentBytes()...)
	file := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.ListenAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, swaks,
		"--server", host, "--port", port, "--helo", "swaks.test", "--timeout", "10",
		"--from", "swaks@sender.example", "--to", "Swaks@callbin.local",
		"--auth", "LOGIN", "--auth-user", "someone", "--auth-password", "anything",
		"--pipeline",
		"--header", "Subject: from swaks",
		"--body", "hello from swaks",
		"--attach-type", "application/pdf", "--attach", "@"+file,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	t.Logf("swaks:\n%s", out)
	if !strings.Contains(string(out), "<-  250 2.0.0 OK: stored as capture") {
		t.Errorf("swaks did not see the 250 naming the capture:\n%s", out)
	}

	got := onlyEmail(t, api, "swaks")
	if got.Kind != "email" || got.Reply.SMTPCode != 250 || got.Proto != "ESMTPA" || got.Path != "Swaks@callbin.local" {
		t.Errorf("got kind %s reply %d proto %s path %s, want email 250 ESMTPA Swaks@callbin.local", got.Kind, got.Reply.SMTPCode, got.Proto, got.Path)
	}
	e := got.Email
	if e.Subject != "from swaks" || !strings.Contains(e.Text, "hello from swaks") || e.MailFrom != "swaks@sender.example" || e.ParseError != "" {
		t.Errorf("got %+v, want the subject, text and envelope swaks sent", e)
	}
	if len(e.Attachments) != 1 {
		t.Fatalf("got %d attachments, want 1: %+v", len(e.Attachments), e.Attachments)
	}
	a := e.Attachments[0]
	if a.Name != "report.pdf" || a.Type != "application/pdf" || a.Size != int64(len(data)) {
		t.Errorf("got %q %s %d bytes, want report.pdf application/pdf %d", a.Name, a.Type, a.Size, len(data))
	}
	b, h := download(t, api+a.URL)
	if !bytes.Equal(b, data) {
		t.Errorf("downloaded %d bytes that differ from the %d attached", len(b), len(data))
	}
	if h.Get("Content-Type") != "application/pdf" || h.Get("Content-Disposition") != "attachment; filename=report.pdf" {
		t.Errorf("got %q, %q, want application/pdf as a download named report.pdf", h.Get("Content-Type"), h.Get("Content-Disposition"))
	}
}

// TestHostileMessageThroughAPI: a message with invalid UTF-8 and a CR LF
// smuggled into its From and Subject through encoded words is kept byte
// for byte, and the API shows its fields as clean one-line text.
func TestHostileMessageThroughAPI(t *testing.T) {
	srv := MustServe(t, nil)
	api := serveAPI(t, srv)
	msg := "From: =?utf-8?q?Eve=0D=0ABcc:_victim@example.com?= <eve@example.com>\r\n" +
		"Subject: =?utf-8?q?hi=0D=0AX-Injected:_yes?= \xff\xfe\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		"not UTF-8: \xc3\x28 \xff\r\n"
	c := MustDial(t, srv)
	if _, err := send(c, "a@example.com", []string{"hostile@callbin.local"}, msg); err != nil {
		t.Fatal(err)
	}
	got := onlyEmail(t, api, "hostile")
	for _, s := range []string{got.Email.From, got.Email.Subject} {
		if strings.ContainsAny(s, "\r\n") || !strings.Contains(s, "  ") {
			t.Errorf("got %q, want the CR LF shown as spaces", s)
		}
	}
	if strings.ContainsRune(got.Email.Text, 0xff) || !strings.Contains(got.Email.Text, "\uFFFD") {
		t.Errorf("got text %q, want invalid bytes replaced", got.Email.Text)
	}
	raw, _ := download(t, fmt.Sprintf("%s/api/v1/bins/hostile/captures/%d/raw", api, got.ID))
	if string(raw) != msg {
		t.Errorf("raw: got %q, want %q", raw, msg)
	}
}
