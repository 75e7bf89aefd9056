package smtpsink_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/smtpsink"
)

const simpleMessage = "From: =?UTF-8?B?SsO2cmc=?= <jorg@example.com>\r\n" +
	"To: hook@callbin.local\r\n" +
	"Subject: =?UTF-8?Q?caf=C3=A9_is_ready?=\r\n" +
	"Date: Tue, 3 Jun 2025 10:00:00 +0000\r\n" +
	"X-Dup: 1\r\n" +
	"X-Dup: 2\r\n" +
	"\r\n" +
	"Task 42 is done.\r\n" +
	".a line that starts with a dot\r\n"

func TestOpenBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &smtpsink.Server{Addr: ln.Addr().String(), Store: MustOpenStore(t)}
	if err := srv.Open(); err == nil {
		srv.Close(context.Background())
		t.Fatal("Open on a busy port: got no error, want one")
	}
	if err := (&smtpsink.Server{}).Open(); err == nil {
		t.Fatal("Open without a store: got no error, want one")
	}
}

func TestExtensions(t *testing.T) {
	srv := MustServe(t, nil)
	c := MustDial(t, srv)
	for ext, want := range map[string]string{
		"SIZE":       fmt.Sprint(smtpsink.DefaultMaxMessage),
		"8BITMIME":   "",
		"PIPELINING": "",
		"SMTPUTF8":   "",
		"AUTH":       "PLAIN LOGIN",
	} {
		ok, got := c.Extension(ext)
		if !ok || got != want {
			t.Errorf("EHLO %s: got %v %q, want true %q", ext, ok, got, want)
		}
	}
}

// TestDeliver: one message to three bins (one of them named twice, in
// another case and domain) is three captures, each with the raw message
// byte for byte, its header fields in order, the parsed parts and the
// envelope.
func TestDeliver(t *testing.T) {
	srv := MustServe(t, nil)
	c := MustDial(t, srv)
	resp, err := send(c, "bounce@sender.example", []string{"hook@callbin.local", "Second@elsewhere.example", "third@x", "HOOK@other.example"}, simpleMessage)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp.StatusText, "capture") {
		t.Errorf("got 250 %q, want it to name the captures", resp.StatusText)
	}
	for _, tt := range []struct {
		bin  string
		rcpt []string
	}{
		{"hook", []string{"hook@callbin.local", "HOOK@other.example"}},
		{"second", []string{"Second@elsewhere.example"}},
		{"third", []string{"third@x"}},
	} {
		caps := captures(t, srv.Store, tt.bin)
		if len(caps) != 1 {
			t.Fatalf("bin %s: got %d captures, want 1", tt.bin, len(caps))
		}
		got := caps[0]
		if string(got.Body) != simpleMessage || got.Size != int64(len(simpleMessage)) {
			t.Errorf("bin %s: got body %q (%d), want %q", tt.bin, got.Body, got.Size, simpleMessage)
		}
		if got.Kind != inbox.KindEmail || got.Method != smtpsink.MethodData || got.Path != tt.rcpt[0] || got.Proto != "ESMTP" {
			t.Errorf("bin %s: got kind %s method %s path %s proto %s, want email DATA %s ESMTP", tt.bin, got.Kind, got.Method, got.Path, got.Proto, tt.rcpt[0])
		}
		if got.Reply != (inbox.Reply{SMTPCode: 250}) {
			t.Errorf("bin %s: got reply %+v, want 250", tt.bin, got.Reply)
		}
		if !strings.HasPrefix(got.RemoteAddr, "127.0.0.1:") || got.ReceivedAt.IsZero() {
			t.Errorf("bin %s: got remote %q at %v, want 127.0.0.1 and a time", tt.bin, got.RemoteAddr, got.ReceivedAt)
		}
		wantHeaders := []inbox.Header{
			{"From", "=?UTF-8?B?SsO2cmc=?= <jorg@example.com>"}, {"To", "hook@callbin.local"},
			{"Subject", "=?UTF-8?Q?caf=C3=A9_is_ready?="}, {"Date", "Tue, 3 Jun 2025 10:00:00 +0000"},
			{"X-Dup", "1"}, {"X-Dup", "2"},
		}
		if !slices.Equal(got.Headers, wantHeaders) {
			t.Errorf("bin %s: got headers %q, want %q", tt.bin, got.Headers, wantHeaders)
		}
		e := got.Email
		if e == nil {
			t.Fatalf("bin %s: no email part", tt.bin)
		}
		if e.From != "Jörg <jorg@example.com>" || e.Subject != "café is ready" || e.Date != "2025-06-03T10:00:00Z" ||
			!slices.Equal(e.To, []string{"hook@callbin.local"}) || !strings.HasPrefix(e.Text, "Task 42 is done.") {
			t.Errorf("bin %s: got %+v, want the parsed message", tt.bin, e)
		}
		if e.MailFrom != "bounce@sender.example" || !slices.Equal(e.RcptTo, tt.rcpt) {
			t.Errorf("bin %s: got envelope %q -> %q, want bounce@sender.example -> %q", tt.bin, e.MailFrom, e.RcptTo, tt.rcpt)
		}
	}
	// The connection goes on: a second message, after RSET.
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := send(c, "", []string{"hook@callbin.local"}, "Subject: again\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	if caps := captures(t, srv.Store, "hook"); len(caps) != 2 || caps[1].Email.MailFrom != "" {
		t.Errorf("got %d captures in hook, want 2, the second from the null sender", len(caps))
	}
}

func TestAuthAnyCredentials(t *testing.T) {
	srv := MustServe(t, nil)
	for _, auth := range []sasl.Client{
		sasl.NewPlainClient("", "anyone", "any password"),
		sasl.NewLoginClient("someone", "whatever"),
	} {
		c := MustDial(t, srv)
		if err := c.Auth(auth); err != nil {
			t.Fatalf("auth: got %v, want success", err)
		}
		if _, err := send(c, "a@example.com", []string{"authed@callbin.local"}, "Subject: a\r\n\r\nx\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	caps := captures(t, srv.Store, "authed")
	if len(caps) != 2 || caps[0].Proto != "ESMTPA" || caps[1].Proto != "ESMTPA" {
		t.Fatalf("got %d captures, want 2 with proto ESMTPA", len(caps))
	}

	// LOGIN without an initial response, as older clients do it.
	rc := dialRaw(t, srv.ListenAddr())
	expect(t, rc.reply(), "220 ")
	expect(t, rc.cmd("EHLO raw.test"), "250 ")
	expect(t, rc.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6") // "Username:"
	expect(t, rc.cmd("dXNlcg=="), "334 UGFzc3dvcmQ6")   // "Password:"
	expect(t, rc.cmd("cGFzcw=="), "235 ")
	expect(t, rc.cmd("AUTH PLAIN AHUAcA=="), "503 ") // once is enough
	expect(t, rc.cmd("QUIT"), "221 ")
}

// TestBadAddresses: a recipient that cannot name a bin, and addresses
// carrying control characters or invalid UTF-8, are refused with a reply
// that says why; the connection goes on.
func TestBadAddresses(t *testing.T) {
	srv := MustServe(t, nil)
	c := MustDial(t, srv)
	if err := c.Mail("a@example.com", nil); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"a+tag@x.example", "-dash@x.example", "a..b@x.example", strings.Repeat("x", 65) + "@x.example", "\"quoted local\"@x.example"} {
		err := c.Rcpt(addr, nil)
		if smtpCode(err) != 550 || !strings.Contains(err.Error(), "bin") {
			t.Errorf("RCPT %s: got %v, want 550 saying the local part names a bin", addr, err)
		}
	}
	if err := c.Rcpt("good@x.example", nil); err != nil {
		t.Errorf("RCPT after refusals: got %v, want 250", err)
	}

	// What go-smtp's client refuses to send, a raw client can.
	rc := dialRaw(t, srv.ListenAddr())
	expect(t, rc.reply(), "220 ")
	expect(t, rc.cmd("EHLO raw.test"), "250 ")
	expect(t, rc.cmd("MAIL FROM:<a@b\rRCPT TO:<evil@x>>"), "501 ")
	expect(t, rc.cmd("MAIL FROM:<a@b\rX-Injected:yes>"), "553 5.1.7")
	expect(t, rc.cmd("MAIL FROM:<a\xff@b>"), "553 5.1.7")
	expect(t, rc.cmd("MAIL FROM:<a@b>"), "250 ")
	expect(t, rc.cmd("RCPT TO:<bin@x\rDATA>"), "553 5.1.3")
	expect(t, rc.cmd("RCPT TO:<bin@x\x00y>"), "553 5.1.3")
	expect(t, rc.cmd("RCPT TO:<bin@x>"), "250 ")
	expect(t, rc.cmd("RSET"), "250 ")
	if caps := captures(t, srv.Store, "bin"); len(caps) != 0 {
		t.Errorf("got %d captures, want none", len(caps))
	}
}

// TestSizeLimit: a message over the limit is answered 552 (at MAIL when
// its size is declared, after DATA otherwise), recorded truncated, and the
// connection stays usable.
func TestSizeLimit(t *testing.T) {
	srv := MustServe(t, &smtpsink.Server{MaxMessage: 1024})
	c := MustDial(t, srv)
	if err := c.Mail("a@example.com", &smtp.MailOptions{Size: 5000}); smtpCode(err) != 552 {
		t.Errorf("MAIL SIZE=5000: got %v, want 552", err)
	}
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 200)
	if _, err := send(c, "a@example.com", []string{"sized@callbin.local"}, big); smtpCode(err) != 552 {
		t.Fatalf("over-size DATA: got %v, want 552", err)
	}
	small := "Subject: small\r\n\r\nfits\r\n"
	if _, err := send(c, "a@example.com", []string{"sized@callbin.local"}, small); err != nil {
		t.Fatalf("after a 552: got %v, want the connection usable", err)
	}
	caps := captures(t, srv.Store, "sized")
	if len(caps) != 2 {
		t.Fatalf("got %d captures, want 2", len(caps))
	}
	if got := caps[0]; !got.Truncated || got.Size != 1024 || got.Reply.SMTPCode != 552 || string(got.Body) != big[:1024] ||
		!strings.Contains(got.Email.ParseError, "size limit") || got.Email.Subject != "big" {
		t.Errorf("got truncated=%v size=%d reply=%+v parse_error=%q, want the first 1024 bytes, 552, a note", got.Truncated, got.Size, got.Reply, got.Email.ParseError)
	}
	if got := caps[1]; got.Truncated || string(got.Body) != small || got.Reply.SMTPCode != 250 {
		t.Errorf("got %+v, want the small message with 250", got)
	}
}

// TestLongLines: a line over the limit ends the transaction with a 500,
// nothing is stored, and the connection is closed.
func TestLongLines(t *testing.T) {
	srv := MustServe(t, nil)
	c := MustDial(t, srv)
	msg := "Subject: long\r\n\r\n" + strings.Repeat("x", 3000) + "\r\n"
	if _, err := send(c, "a@example.com", []string{"long@callbin.local"}, msg); smtpCode(err) != 500 {
		t.Errorf("a 3000-byte line in DATA: got %v, want 500", err)
	}
	rc := dialRaw(t, srv.ListenAddr())
	expect(t, rc.reply(), "220 ")
	expect(t, rc.cmd("EHLO "+strings.Repeat("h", 3000)), "500 ")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if caps := captures(t, srv.Store, "long"); len(caps) != 0 {
		t.Errorf("got %d captures, want none", len(caps))
	}
}

// TestAbandonedData: a client that goes away, or falls silent, mid-DATA
// gets nothing stored and never a 250.
func TestAbandonedData(t *testing.T) {
	srv := MustServe(t, &smtpsink.Server{ReadTimeout: 300 * time.Millisecond})
	start := func() *rawConn {
		rc := dialRaw(t, srv.ListenAddr())
		expect(t, rc.reply(), "220 ")
		expect(t, rc.cmd("EHLO raw.test"), "250 ")
		expect(t, rc.cmd("MAIL FROM:<a@example.com>"), "250 ")
		expect(t, rc.cmd("RCPT TO:<half@callbin.local>"), "250 ")
		expect(t, rc.cmd("DATA"), "354 ")
		if _, err := rc.Write([]byte("Subject: half\r\n\r\nthe first half of the mess")); err != nil {
			t.Fatal(err)
		}
		return rc
	}
	gone := start()
	gone.Close()

	silent := start()
	got := silent.reply() // after ReadTimeout
	if strings.HasPrefix(got, "2") {
		t.Errorf("a client silent mid-DATA: got %q, want a refusal", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil { // waits for both sessions
		t.Fatal(err)
	}
	if caps := captures(t, srv.Store, "half"); len(caps) != 0 {
		t.Errorf("got %d captures, want none", len(caps))
	}
}

// TestIdleConnections: idle clients are cut after ReadTimeout with a 421,
// and clients past MaxConnections are turned away at once. ReadTimeout is
// long enough for the 41 dials to happen before the first cut, even on a
// loaded machine: each connection's idle clock starts at its greeting.
func TestIdleConnections(t *testing.T) {
	srv := MustServe(t, &smtpsink.Server{ReadTimeout: 2 * time.Second, MaxConnections: 40})
	conns := make([]*rawConn, 40)
	for i := range conns {
		conns[i] = dialRaw(t, srv.ListenAddr())
		expect(t, conns[i].reply(), "220 ")
	}
	extra := dialRaw(t, srv.ListenAddr())
	expect(t, extra.reply(), "421 4.7.0")
	start := time.Now()
	for _, c := range conns {
		expect(t, c.reply(), "421 ")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.r.ReadByte(); err == nil {
			t.Fatal("an idle connection stayed open after its 421")
		}
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("idle connections took %s to be cut, want about 2s", d)
	}
	// Room again.
	c := MustDial(t, srv)
	if _, err := send(c, "a@example.com", []string{"after@callbin.local"}, "Subject: x\r\n\r\nx\r\n"); err != nil {
		t.Fatalf("after the idle ones were cut: %v", err)
	}
}

// TestMIMEBomb: a message built to make the MIME parser work for minutes
// is stored raw, with a parse error, and answered at once.
func TestMIMEBomb(t *testing.T) {
	srv := MustServe(t, nil)
	var b strings.Builder
	b.WriteString("Subject: bomb\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n")
	const depth = 3000
	for i := 1; i <= depth; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n", i-1, i)
	}
	for i := depth; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	c := MustDial(t, srv)
	start := time.Now()
	if _, err := send(c, "a@example.com", []string{"bomb@callbin.local"}, b.String()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s, want well under 5s", d)
	}
	caps := captures(t, srv.Store, "bomb")
	if len(caps) != 1 || caps[0].Email.Subject != "bomb" || !strings.Contains(caps[0].Email.ParseError, "kept raw") || string(caps[0].Body) != b.String() {
		t.Fatalf("got %d captures, want the raw message with a parse error", len(caps))
	}
}

// TestClose: Close cuts connections in the middle of a scripted hang and a
// scripted delay, and returns promptly; the server refuses new ones after.
func TestClose(t *testing.T) {
	srv := MustServe(t, nil)
	setScript(t, srv, "hangs", "steps: [{fault: hang}]")
	setScript(t, srv, "waits", "steps: [{delay: 10m, smtp: {code: 451}}]")
	errs := make(chan error, 2)
	for _, bin := range []string{"hangs", "waits"} {
		c := MustDial(t, srv)
		if err := c.Mail("a@example.com", nil); err != nil {
			t.Fatal(err)
		}
		go func() { errs <- c.Rcpt(bin+"@callbin.local", nil) }()
	}
	// Both attempts are recorded before their hang or delay begins.
	deadline := time.Now().Add(5 * time.Second)
	for len(captures(t, srv.Store, "hangs"))+len(captures(t, srv.Store, "waits")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the attempts were not recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s, want it prompt", d)
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err == nil {
			t.Error("a client in a hang or delay got a success at Close, want an error")
		}
	}
	if _, err := net.DialTimeout("tcp", srv.ListenAddr(), time.Second); err == nil {
		t.Error("dial after Close: got a connection, want none")
	}
	if err := srv.Close(ctx); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

func TestErrorsAreSMTPErrors(t *testing.T) {
	srv := MustServe(t, nil)
	c := MustDial(t, srv)
	c.Mail("a@example.com", nil)
	err := c.Rcpt("no+bin@x", nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Errorf("got %#v, want a 550 5.1.1", err)
	}
}

// TestBDAT: a message sent in chunks (CHUNKING) is stored like one sent
// with DATA.
func TestBDAT(t *testing.T) {
	srv := MustServe(t, nil)
	msg := "Subject: chunked\r\n\r\nfirst part, " + strings.Repeat("y", 100) + " last part\r\n"
	rc := dialRaw(t, srv.ListenAddr())
	expect(t, rc.reply(), "220 ")
	expect(t, rc.cmd("EHLO raw.test"), "250 ")
	expect(t, rc.cmd("MAIL FROM:<a@example.com>"), "250 ")
	expect(t, rc.cmd("RCPT TO:<chunked@callbin.local>"), "250 ")
	chunk := func(s string, last bool) string {
		cmd := fmt.Sprintf("BDAT %d", len(s))
		if last {
			cmd += " LAST"
		}
		if _, err := rc.Write([]byte(cmd + "\r\n" + s)); err != nil { // a chunk ends where its size says
			t.Fatal(err)
		}
		return rc.reply()
	}
	expect(t, chunk(msg[:30], false), "250 ")
	expect(t, chunk(msg[30:], true), "250 2.0.0 OK: stored as capture")
	caps := captures(t, srv.Store, "chunked")
	if len(caps) != 1 || string(caps[0].Body) != msg || caps[0].Email.Subject != "chunked" {
		t.Fatalf("got %d captures, want the chunked message", len(caps))
	}
}

// TestMetrics: stored messages and recorded attempts are counted.
func TestMetrics(t *testing.T) {
	m := inbox.NewMetrics(prometheus.NewRegistry())
	srv := MustServe(t, &smtpsink.Server{Metrics: m})
	setScript(t, srv, "refuses", `steps: [{smtp: {code: 550}}]`)
	c := MustDial(t, srv)
	if _, err := send(c, "a@example.com", []string{"counted@x", "other@x"}, "Subject: m\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := send(c, "a@example.com", []string{"refuses@x"}, "Subject: m\r\n\r\nx\r\n"); smtpCode(err) != 550 {
		t.Fatalf("got %v, want 550", err)
	}
	value := func(c prometheus.Counter) float64 {
		var pb dto.Metric
		if err := c.Write(&pb); err != nil {
			t.Fatal(err)
		}
		return pb.GetCounter().GetValue()
	}
	if got := value(m.Captures.WithLabelValues(inbox.KindEmail)); got != 3 {
		t.Errorf("got %v e-mail captures counted, want 3", got)
	}
	if got := value(m.Bytes.WithLabelValues(inbox.KindEmail)); got != 2*float64(len("Subject: m\r\n\r\nx\r\n")) {
		t.Errorf("got %v bytes counted, want the two stored messages'", got)
	}
}

// TestHELOAndDots: a plain SMTP client (HELO) is served too, and the dots
// a client doubles at the start of lines come back single, so that the
// body is the message byte for byte.
func TestHELOAndDots(t *testing.T) {
	srv := MustServe(t, nil)
	msg := "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n"
	rc := dialRaw(t, srv.ListenAddr())
	expect(t, rc.reply(), "220 ")
	expect(t, rc.cmd("HELO old.test"), "250 ")
	expect(t, rc.cmd("MAIL FROM:<a@example.com>"), "250 ")
	expect(t, rc.cmd("RCPT TO:<dots@callbin.local>"), "250 ")
	expect(t, rc.cmd("DATA"), "354 ")
	stuffed := strings.ReplaceAll("\r\n"+msg, "\r\n.", "\r\n..")[2:]
	expect(t, rc.cmd(stuffed+"."), "250 ")
	caps := captures(t, srv.Store, "dots")
	if len(caps) != 1 {
		t.Fatalf("got %d captures, want 1", len(caps))
	}
	if string(caps[0].Body) != msg || caps[0].Proto != "SMTP" {
		t.Errorf("got %q with proto %s, want %q with proto SMTP", caps[0].Body, caps[0].Proto, msg)
	}
}

func TestMaxRecipients(t *testing.T) {
	srv := MustServe(t, &smtpsink.Server{MaxRecipients: 2})
	c := MustDial(t, srv)
	c.Mail("a@example.com", nil)
	for i, want := range []int{0, 0, 452} {
		if err := c.Rcpt(fmt.Sprintf("r%d@x", i), nil); smtpCode(err) != want {
			t.Errorf("RCPT %d: got %v, want code %d", i+1, err, want)
		}
	}
}
