package smtpsink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/scenarios"
)

// Capture methods: the SMTP command whose reply a capture records.
const (
	MethodRcpt = "RCPT" // an attempt answered at RCPT TO, before any message was sent
	MethodData = "DATA" // a message (sent with DATA or BDAT)
)

// session is one client connection's SMTP state.
type session struct {
	srv    *Server
	conn   *conn
	remote string

	mu       sync.Mutex // guards the fields below: with BDAT, Data runs apart
	authUser string
	authed   bool
	proto    string // as of MAIL FROM
	from     string
	targets  []*target // the bins of the current message, in RCPT order
}

// target is one bin of the current message: the addresses that named it
// and the reply its scenario decided for this attempt.
type target struct {
	bin   string
	addrs []string
	reply scenarios.SMTPReply
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	cn, ok := c.Conn().(*conn)
	if !ok {
		return nil, errors.New("smtpsink: connection not from the sink's listener")
	}
	return &session{srv: s, conn: cn, remote: cn.RemoteAddr().String()}, nil
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

// Auth accepts any credentials: the sink checks nothing, it only records.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	accept := func(user string) error {
		ss.mu.Lock()
		ss.authUser, ss.authed = user, true
		ss.mu.Unlock()
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, _ string) error { return accept(user) }), nil
	case sasl.Login:
		return &loginServer{authenticate: func(user, _ string) error { return accept(user) }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Reset() {
	ss.mu.Lock()
	ss.from, ss.targets = "", nil
	ss.mu.Unlock()
}

func (ss *session) Logout() error { return nil }

// badAddress says what is wrong with an address that cannot be stored as
// sent: a control character (CR, LF...) or invalid UTF-8; "" when fine.
func badAddress(addr string) string {
	if !utf8.ValidString(addr) {
		return "is not valid UTF-8"
	}
	for _, r := range addr {
		if r < 0x20 || r == 0x7f {
			return fmt.Sprintf("contains the control character %U", r)
		}
	}
	return ""
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if why := badAddress(from); why != "" {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Sender address " + why}
	}
	if opts != nil && opts.Size > ss.srv.MaxMessage {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: fmt.Sprintf("Message size %d is over the limit of %d bytes", opts.Size, ss.srv.MaxMessage)}
	}
	ss.mu.Lock()
	ss.from, ss.targets = from, nil
	ss.proto = ss.conn.proto(ss.authed)
	ss.mu.Unlock()
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if why := badAddress(to); why != "" {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Recipient address " + why}
	}
	local := to
	if i := strings.LastIndexByte(to, '@'); i >= 0 {
		local = to[:i]
	}
	bin, err := inbox.NormalizeBinName(local)
	if err != nil {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: fmt.Sprintf("No bin for <%s>: the local part names the bin, and %v", to, err)}
	}
	ss.mu.Lock()
	for _, t := range ss.targets {
		if t.bin == bin { // the same attempt: the bin's reply is decided
			if !contains(t.addrs, to) {
				t.addrs = append(t.addrs, to)
			}
			ss.mu.Unlock()
			return nil
		}
	}
	from, proto := ss.from, ss.proto
	ss.mu.Unlock()

	reply := scenarios.SMTPReply{Default: true, At: scenarios.AtRcpt, Step: -1}
	if ss.srv.Scripts != nil {
		if reply, err = ss.srv.Scripts.NextSMTP(ss.srv.ctx, bin); err != nil {
			if ss.srv.ctx.Err() != nil {
				return errServerClosing
			}
			ss.srv.log.Error("scenario not readable", "bin", bin, "err", err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
				Message: fmt.Sprintf("The scenario of bin %q cannot be read; try again later", bin)}
		}
	}
	if reply.Default || reply.At != scenarios.AtRcpt {
		ss.addTarget(bin, to, reply)
		return nil
	}

	// Scripted at RCPT.
	refused := reply.Code >= 400 || reply.Fault.NoStatus() || reply.Fault == scenarios.FaultClose
	if refused {
		c := &inbox.Capture{
			Bin: bin, Kind: inbox.KindEmail, Method: MethodRcpt, Path: to, Proto: proto,
			Headers: []inbox.Header{}, RemoteAddr: ss.remote, ReceivedAt: time.Now(),
			Reply: inbox.Reply{SMTPCode: reply.Code, Fault: string(reply.Fault)},
			Email: &inbox.Email{To: []string{}, Attachments: []inbox.Attachment{}, MailFrom: from, RcptTo: []string{to}},
		}
		if err := ss.srv.Store.Add(ss.srv.ctx, c); err != nil {
			return ss.srv.notStored(err)
		}
		ss.srv.counted(c.ReceivedAt, c)
		ss.srv.log.Debug("attempt refused by the scenario", "bin", bin, "rcpt", to, "smtp_code", reply.Code, "fault", reply.Fault)
	}
	if err := ss.srv.sleep(reply.Delay); err != nil {
		return errServerClosing
	}
	if err := ss.answer(reply); err != nil {
		return err
	}
	if refused {
		return scriptedError(reply.Code, reply.Message)
	}
	ss.addTarget(bin, to, reply)
	return nil
}

func (ss *session) addTarget(bin, addr string, reply scenarios.SMTPReply) {
	ss.mu.Lock()
	ss.targets = append(ss.targets, &target{bin: bin, addrs: []string{addr}, reply: reply})
	ss.mu.Unlock()
}

// answer carries out a scripted reply's fault, or 421's close. It returns
// the error to give go-smtp when the connection was dropped (nil when the
// reply is still to be sent the normal way).
func (ss *session) answer(reply scenarios.SMTPReply) error {
	switch reply.Fault {
	case scenarios.FaultReset:
		if reply.Code != 0 {
			ss.conn.writeLine(reply.Code, reply.Message)
		}
		ss.conn.reset()
		return errDropped
	case scenarios.FaultClose:
		if reply.Code != 0 {
			ss.conn.writeLine(reply.Code, reply.Message)
		}
		ss.conn.Close()
		return errDropped
	case scenarios.FaultHang:
		ss.conn.hang()
		return errDropped
	case scenarios.FaultGarbage:
		ss.conn.garbage()
		return errDropped
	case scenarios.FaultSlow:
		ss.conn.slowNext = true
	}
	if reply.Code == 421 { // "closing transmission channel": so it does
		ss.conn.writeLine(reply.Code, reply.Message)
		ss.conn.Close()
		return errDropped
	}
	return nil
}

// errDropped is returned to go-smtp once a scripted fault dropped the
// connection; nothing more reaches the client.
var errDropped = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Connection dropped by the scenario"}

var errServerClosing = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Shutting down, try again later"}

func (s *Server) notStored(err error) error {
	if errors.Is(err, inbox.ErrClosed) || s.ctx.Err() != nil {
		return errServerClosing
	}
	s.log.Error("message not stored", "err", err)
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Message not stored, try again later"}
}

// Data reads the whole message, stores one capture per bin (all committed
// before it returns), and answers 250 or what the bins' scenarios scripted
// for DATA. With bins whose scenarios script different things for DATA,
// the first bin (in RCPT order) with a scripted DATA reply decides the one
// reply the client gets, and every bin records that reply. The delay is the
// longest scripted.
func (ss *session) Data(r io.Reader) error {
	start := time.Now()
	ss.mu.Lock()
	from, targets, proto := ss.from, ss.targets, ss.proto
	ss.mu.Unlock()
	if len(targets) == 0 { // go-smtp asks for a recipient first; this is a guard
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	}

	// While the message is read and parsed, the store's writer may wait a
	// moment for its captures rather than commit without them.
	arrivals := make([]func(), len(targets))
	for i := range arrivals {
		arrivals[i] = ss.srv.Store.Expect()
	}
	arrived := func() {
		for _, a := range arrivals {
			a()
		}
	}
	defer arrived()

	var buf bytes.Buffer
	_, readErr := buf.ReadFrom(r)
	readTime := time.Since(start)
	raw := buf.Bytes()
	truncated := false
	switch {
	case readErr == nil:
	case errors.Is(readErr, smtp.ErrDataTooLarge):
		truncated = true
	case errors.Is(readErr, smtp.ErrTooLongLine):
		ss.srv.log.Info("message refused: line too long", "remote", ss.remote)
		return &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2},
			Message: "Line too long (the limit is 2000 bytes; RFC 5321 allows 1000), closing connection"}
	default:
		// The client went away or fell silent mid-message: nothing is
		// stored, and nobody is left to answer.
		ss.srv.log.Info("message abandoned mid-DATA", "remote", ss.remote, "bytes", len(raw), "err", readErr)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message incomplete, not stored"}
	}

	// The one reply of this attempt.
	reply := scenarios.SMTPReply{Default: true, At: scenarios.AtData, Step: -1}
	if !truncated {
		for _, t := range targets {
			if t.reply.Default || t.reply.At != scenarios.AtData {
				continue
			}
			if reply.Default {
				reply = t.reply
			}
			reply.Delay = max(reply.Delay, t.reply.Delay)
		}
	}
	code := 250
	switch {
	case truncated:
		code = 552
	case reply.Code != 0:
		code = reply.Code
	case reply.Fault.NoStatus() || reply.Fault == scenarios.FaultClose:
		code = 0
	}

	email := inbox.ParseEmail(raw)
	if truncated {
		note := fmt.Sprintf("message over the size limit of %d bytes: only the first %d bytes were kept", ss.srv.MaxMessage, len(raw))
		if email.ParseError != "" {
			note += "; " + email.ParseError
		}
		email.ParseError = note
	}
	email.MailFrom = from
	headers := inbox.ParseEmailHeaders(raw)
	caps := make([]*inbox.Capture, len(targets))
	for i, t := range targets {
		e := *email
		e.RcptTo = t.addrs
		caps[i] = &inbox.Capture{
			Bin: t.bin, Kind: inbox.KindEmail, Method: MethodData, Path: t.addrs[0], Proto: proto,
			Headers: headers, Body: raw, Size: int64(len(raw)), Truncated: truncated,
			RemoteAddr: ss.remote, ReceivedAt: start, ReadTime: readTime,
			Reply: inbox.Reply{SMTPCode: code, Fault: string(reply.Fault)}, Email: &e,
		}
	}
	arrived()
	if err := ss.srv.store(caps); err != nil {
		return ss.srv.notStored(err)
	}
	ss.srv.counted(start, caps...)
	ss.srv.log.Debug("message stored", "remote", ss.remote, "from", from, "bins", len(caps), "bytes", len(raw), "smtp_code", code)

	if truncated {
		return smtp.ErrDataTooLarge
	}
	if err := ss.srv.sleep(reply.Delay); err != nil {
		return errServerClosing
	}
	if err := ss.answer(reply); err != nil {
		return err
	}
	if reply.Code != 0 {
		return scriptedError(reply.Code, reply.Message)
	}
	ids := make([]string, len(caps))
	for i, c := range caps {
		ids[i] = fmt.Sprintf("%d in bin %s", c.ID, c.Bin)
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: stored as capture " + strings.Join(ids, ", ")}
}

// counted adds stored captures to the metrics; start is when their
// attempt began.
func (s *Server) counted(start time.Time, caps ...*inbox.Capture) {
	m := s.Metrics
	if m == nil {
		return
	}
	for _, c := range caps {
		m.Captures.WithLabelValues(inbox.KindEmail).Inc()
		m.Bytes.WithLabelValues(inbox.KindEmail).Add(float64(c.Size))
		if c.Truncated {
			m.Truncated.Inc()
		}
	}
	m.CaptureLatency.Observe(time.Since(start).Seconds())
}

// store adds the captures through the store's group commit, all at once
// so that they share a commit, and returns once every one is committed.
func (s *Server) store(caps []*inbox.Capture) error {
	return s.Store.Add(s.ctx, caps...)
}

// scriptedError is the reply a script gives: its message may start with
// an enhanced status code of the code's class ("4.7.1 Greylisted"), which
// becomes the reply's enhanced code instead of a generic X.0.0.
func scriptedError(code int, msg string) *smtp.SMTPError {
	enh, rest := splitEnhanced(code, msg)
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: rest}
}

func splitEnhanced(code int, msg string) (smtp.EnhancedCode, string) {
	first, rest, _ := strings.Cut(msg, " ")
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return smtp.EnhancedCodeNotSet, msg
	}
	var enh smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 || len(p) > 3 {
			return smtp.EnhancedCodeNotSet, msg
		}
		enh[i] = n
	}
	if enh[0] != code/100 || (enh[0] != 2 && enh[0] != 4 && enh[0] != 5) {
		return smtp.EnhancedCodeNotSet, msg
	}
	return enh, strings.TrimSpace(rest)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// loginServer is the server side of the LOGIN mechanism (which go-sasl
// has only as a client): it asks for the user name unless the client gave
// it with AUTH, then for the password.
type loginServer struct {
	step         int
	user         string
	authenticate func(user, pass string) error
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		if response == nil {
			l.step = 1
			return []byte("Username:"), false, nil
		}
		l.user, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.authenticate(l.user, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}
