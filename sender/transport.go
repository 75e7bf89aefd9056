package sender

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
)

// Reply limits: the first KiB of a reply is kept for the attempt log, and at
// most drainLimit more is read (and discarded) so that a kept-alive
// connection can be reused; past that the connection is closed instead.
const (
	replyKeep      = 1 << 10
	drainLimit     = 64 << 10
	maxReplyHeader = 64
	userAgent      = "callbin-sender/1"
	mailFrom       = "callbacks@callbin.localhost"
)

// Header names of a callback.
const (
	HeaderAuth           = "scale-callback-auth"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderWebhookID      = "webhook-id"
	HeaderWebhookTime    = "webhook-timestamp"
	HeaderWebhookSig     = "webhook-signature"
)

// Error classes of failed attempts.
const (
	ClassHTTPStatus = "http_status" // a reply that is not 2xx or 3xx
	ClassRedirect   = "redirect"    // a 3xx, not followed
	ClassTimeout    = "timeout"
	ClassRefused    = "refused"
	ClassReset      = "reset"
	ClassClosed     = "closed" // connection closed without a (complete) reply
	ClassDNS        = "dns"
	ClassTLS        = "tls"
	ClassNetwork    = "network"
	ClassSMTP       = "smtp"        // an SMTP 4xx/5xx reply
	ClassConfig     = "config"      // e.g. no SMTP relay configured
	ClassInterrupt  = "interrupted" // the process stopped during the attempt
)

// message is one callback to send.
type message struct {
	TaskID    string
	Event     string
	WebhookID string // also the idempotency key
	Payload   []byte
	AuthKey   string
	Secret    string // whsec_... or ""
}

// Outcome is what one attempt saw.
type Outcome struct {
	OK           bool          `json:"ok"`                    // a 2xx (HTTP) or an accepted message (SMTP)
	Final        bool          `json:"final,omitempty"`       // do not retry (SMTP 5xx)
	Status       int           `json:"status,omitempty"`      // HTTP status or SMTP reply code; 0 if none
	Error        string        `json:"error,omitempty"`       // "" when OK
	Class        string        `json:"error_class,omitempty"` // error class, "" when OK
	Latency      time.Duration `json:"latency_ns"`            // real time from start to the end of the reply
	ReplyHeaders [][2]string   `json:"reply_headers"`         // sorted by name
	ReplyBody    []byte        `json:"reply_body"`            // at most the first KiB (base64 in JSON)
}

// transport sends callbacks over HTTP and SMTP.
type transport struct {
	client  *http.Client
	relay   string
	timeout time.Duration
	bufs    sync.Pool // *[replyKeep]byte, for readReply
}

func newTransport(timeout time.Duration, relay string, idle int) *transport {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	rt := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           idle * 2,
		MaxIdleConnsPerHost:    idle,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &transport{
		// No Client.Timeout: each attempt's context has the deadline (it
		// covers the reply body too), and a Client.Timeout would cost a
		// goroutine per request.
		client: &http.Client{
			Transport: rt,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		relay:   relay,
		timeout: timeout,
	}
}

func (t *transport) close() { t.client.CloseIdleConnections() }

// printableASCII reports whether s can go into an HTTP or e-mail header as
// it is: printable ASCII, no control characters.
func printableASCII(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r > '~' }) < 0
}

// CheckRelay checks that addr is a usable SMTP relay address: host:port
// with a host and a port number (or service name) that exists.
func CheckRelay(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%w: SMTP relay %q is not host:port", ErrInvalid, addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%w: SMTP relay %q: port %q is not a port number from 1 to 65535", ErrInvalid, addr, port)
	}
	return nil
}

// send makes one attempt to deliver m to target.
func (t *transport) send(ctx context.Context, target Target, m message) Outcome {
	if target.Email != "" {
		return t.sendMail(ctx, target.Email, m)
	}
	return t.sendHTTP(ctx, target.URL, m)
}

// signature computes the Standard Webhooks v1 signature of body.
func signature(secret, id string, ts int64, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// decodeSecret reads a whsec_-prefixed base64 signing secret.
func decodeSecret(secret string) ([]byte, error) {
	s, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, fieldErr("signing_secret", "must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fieldErr("signing_secret", "after whsec_ must be standard base64")
	}
	if len(key) < 16 || len(key) > 128 {
		return nil, fieldErr("signing_secret", "key must be 16 to 128 bytes, got %d", len(key))
	}
	return key, nil
}

// NewSigningSecret returns a fresh whsec_ secret with a 32-byte key.
func NewSigningSecret() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// headers returns the callback headers other than Content-Type. The
// webhook-timestamp is wall-clock time (receivers check it against theirs),
// even when the scheduler runs on a scaled clock.
func (m message) headers() ([][2]string, error) {
	h := [][2]string{
		{HeaderIdempotencyKey, m.WebhookID},
		{HeaderWebhookID, m.WebhookID},
	}
	if m.AuthKey != "" {
		h = append(h, [2]string{HeaderAuth, m.AuthKey})
	}
	if m.Secret != "" {
		ts := time.Now().Unix()
		sig, err := signature(m.Secret, m.WebhookID, ts, m.Payload)
		if err != nil {
			return nil, err
		}
		h = append(h, [2]string{HeaderWebhookTime, strconv.FormatInt(ts, 10)}, [2]string{HeaderWebhookSig, sig})
	}
	return h, nil
}

func (t *transport) sendHTTP(ctx context.Context, url string, m message) (out Outcome) {
	start := time.Now()
	defer func() { out.Latency = time.Since(start) }()
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(m.Payload))
	if err != nil {
		return Outcome{Error: "bad request: " + err.Error(), Class: ClassConfig}
	}
	hs, err := m.headers()
	if err != nil {
		return Outcome{Error: "sign: " + err.Error(), Class: ClassConfig}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	for _, kv := range hs {
		req.Header.Set(kv[0], kv[1])
	}
	resp, err := t.client.Do(req)
	if err != nil {
		class, msg := classify(ctx, err)
		return Outcome{Error: msg, Class: class}
	}
	defer resp.Body.Close()
	out.Status = resp.StatusCode
	out.ReplyHeaders = flattenHeaders(resp.Header)
	body, rerr := t.readReply(resp.Body)
	out.ReplyBody = body
	if rerr == nil && len(body) == replyKeep {
		// More than a KiB: drain a bounded amount so the connection may be
		// reused; a bigger reply is cut off by closing the body.
		_, rerr = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		loc := resp.Header.Get("Location")
		out.Class = ClassRedirect
		out.Error = fmt.Sprintf("HTTP %d redirect to %q not followed", resp.StatusCode, truncate(loc, 200))
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		out.Class = ClassHTTPStatus
		out.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
	case rerr != nil:
		class, msg := classify(ctx, rerr)
		if class == ClassNetwork {
			class = ClassClosed
		}
		out.Class = class
		out.Error = "reply cut short: " + msg
	default:
		out.OK = true
	}
	return out
}

// readReply reads at most the first replyKeep bytes of a reply; reaching
// its end is not an error. It reads into a pooled buffer and keeps a copy of
// what came, so a short reply costs its own size, not a KiB.
func (t *transport) readReply(r io.Reader) ([]byte, error) {
	buf, _ := t.bufs.Get().(*[replyKeep]byte)
	if buf == nil {
		buf = new([replyKeep]byte)
	}
	defer t.bufs.Put(buf)
	got := 0
	for got < len(buf) {
		m, err := r.Read(buf[got:])
		got += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return bytes.Clone(buf[:got]), err
		}
	}
	return bytes.Clone(buf[:got]), nil
}

func flattenHeaders(h http.Header) [][2]string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][2]string
	for _, k := range keys {
		for _, v := range h[k] {
			if len(out) == maxReplyHeader {
				return out
			}
			out = append(out, [2]string{k, truncate(v, 512)})
		}
	}
	return out
}

// classify names the class of a transport error and a short message.
func classify(ctx context.Context, err error) (class, msg string) {
	msg = err.Error()
	var (
		dnsErr  *net.DNSError
		netErr  net.Error
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		alert   tls.AlertError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		smtpErr *smtp.SMTPError
	)
	switch {
	case errors.As(err, &smtpErr):
		return ClassSMTP, fmt.Sprintf("SMTP %d %s", smtpErr.Code, smtpErr.Message)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ClassTimeout, msg
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return ClassInterrupt, msg
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused, msg
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ClassReset, msg
	case errors.As(err, &dnsErr):
		return ClassDNS, msg
	case errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &alert),
		errors.As(err, &unkAuth), errors.As(err, &hostErr):
		return ClassTLS, msg
	case errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout, msg
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ClassClosed, msg
	}
	return ClassNetwork, msg
}

// sendMail delivers m as an e-mail through the SMTP relay. 4xx replies and
// connection failures may be retried; 5xx replies are final.
func (t *transport) sendMail(ctx context.Context, to string, m message) (out Outcome) {
	start := time.Now()
	defer func() { out.Latency = time.Since(start) }()
	if t.relay == "" {
		return Outcome{Error: "no SMTP relay configured for e-mail callbacks", Class: ClassConfig}
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	fail := func(err error) Outcome {
		class, msg := classify(ctx, err)
		o := Outcome{Error: msg, Class: class}
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			o.Status = se.Code
			o.Final = se.Code >= 500
		}
		return o
	}
	raw, err := buildMail(to, m)
	if err != nil {
		return Outcome{Error: err.Error(), Class: ClassConfig}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.relay)
	if err != nil {
		return fail(err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("callbin.localhost"); err != nil {
		return fail(err)
	}
	if err := c.Mail(mailFrom, nil); err != nil {
		return fail(err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return fail(err)
	}
	w, err := c.Data()
	if err != nil {
		return fail(err)
	}
	if _, err := w.Write(raw); err != nil {
		w.Close()
		return fail(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return fail(err)
	}
	_ = c.Quit()
	out.OK = true
	out.Status = 250
	out.ReplyBody = []byte(truncate(resp.StatusText, replyKeep))
	return out
}

// buildMail renders the callback e-mail: headers, then the JSON payload,
// quoted-printable so that no line exceeds SMTP's limit.
func buildMail(to string, m message) ([]byte, error) {
	hs, err := m.headers()
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: callbin <%s>\r\n", mailFrom)
	fmt.Fprintf(&b, "To: <%s>\r\n", to)
	var p struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(m.Payload, &p)
	if p.Status != "" {
		fmt.Fprintf(&b, "Subject: callbin callback: %s %s (%s)\r\n", m.Event, m.TaskID, p.Status)
	} else {
		fmt.Fprintf(&b, "Subject: callbin callback: %s %s\r\n", m.Event, m.TaskID)
	}
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s.%s@callbin.localhost>\r\n", m.WebhookID, newID(4))
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: application/json; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n")
	fmt.Fprintf(&b, "X-Callbin-Event: %s\r\n", m.Event)
	fmt.Fprintf(&b, "X-Callbin-Task-Id: %s\r\n", m.TaskID)
	for _, kv := range hs {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[0], kv[1])
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write(m.Payload); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	// A soft line break ends the body: the message ends with CRLF as SMTP
	// needs, and the decoded body is exactly the payload.
	b.WriteString("=\r\n")
	return b.Bytes(), nil
}
