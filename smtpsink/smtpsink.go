// Package smtpsink implements callbin's SMTP sink: an SMTP server, built on
// github.com/emersion/go-smtp, that accepts mail from any sender to any
// address and stores each message as an e-mail capture (inbox.KindEmail) in
// the bin named by the recipient's local part. It never relays anything
// anywhere.
//
// It offers AUTH PLAIN and LOGIN (any credentials are accepted, without
// TLS), SIZE, 8BITMIME, PIPELINING, SMTPUTF8 and CHUNKING. A message is
// parsed (inbox.ParseEmail), stored with its raw bytes through the store's
// group commit, and only then answered 250. A message to three bins is three
// captures. A bin's scenario may script the reply to a delivery attempt at
// RCPT or at DATA (a code, a delay, a dropped connection...); each attempt
// that is refused or dropped that way is recorded too, so that a test can
// read back the exact sequence a sender saw.
package smtpsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/callbin/callbin/inbox"
)

// Defaults of Server.
const (
	DefaultAddr           = "127.0.0.1:2525"
	DefaultMaxMessage     = 25 << 20
	DefaultDomain         = "callbin.local"
	DefaultReadTimeout    = time.Minute
	DefaultWriteTimeout   = time.Minute
	DefaultMaxRecipients  = 100
	DefaultMaxConnections = 1000
)

// Server is the SMTP sink. Set its fields, then call Open; Close stops it.
type Server struct {
	Addr          string         // where to listen; default DefaultAddr
	Store         *inbox.Store   // where messages go; required
	Scripts       *inbox.Scripts // bins' scripted replies; nil: every message is accepted
	MaxMessage    int64          // message size limit, advertised with SIZE; default DefaultMaxMessage
	Domain        string         // the name in the greeting and EHLO reply; default DefaultDomain
	ReadTimeout   time.Duration  // how long a client may stay silent, idle or mid-message; default DefaultReadTimeout
	WriteTimeout  time.Duration  // how long a reply may take to go out; default DefaultWriteTimeout
	MaxRecipients int            // recipients per message; default DefaultMaxRecipients
	// MaxConnections bounds the connections open at once; past it, a new
	// connection is answered 421 and closed. Default DefaultMaxConnections.
	MaxConnections int
	// SlowInterval is the pause between the bytes of a scripted slow reply;
	// default inbox.DefaultSlowInterval.
	SlowInterval time.Duration
	Metrics      *inbox.Metrics // may be nil
	Logger       *slog.Logger   // named by the caller, e.g. Logger.With("component", "smtp")
	// Sleep waits for scripted delays and between the bytes of a slow
	// reply; it returns early with ctx's error when the server closes. nil:
	// a real timer. Tests pass a fast one.
	Sleep func(ctx context.Context, d time.Duration) error

	log    *slog.Logger
	srv    *smtp.Server
	ln     *listener
	ctx    context.Context // ends at Close: cuts delays short
	cancel context.CancelFunc
	served chan error // the result of srv.Serve
	once   sync.Once
	err    error
}

// Open listens on Addr and starts serving. A busy port is an error.
func (s *Server) Open() error {
	if s.Store == nil {
		return errors.New("smtpsink: Store is nil")
	}
	if s.Addr == "" {
		s.Addr = DefaultAddr
	}
	if s.MaxMessage <= 0 {
		s.MaxMessage = DefaultMaxMessage
	}
	if s.Domain == "" {
		s.Domain = DefaultDomain
	}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = DefaultReadTimeout
	}
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = DefaultWriteTimeout
	}
	if s.MaxRecipients <= 0 {
		s.MaxRecipients = DefaultMaxRecipients
	}
	if s.SlowInterval <= 0 {
		s.SlowInterval = inbox.DefaultSlowInterval
	}
	if s.MaxConnections <= 0 {
		s.MaxConnections = DefaultMaxConnections
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}

	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtpsink: listen: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ln = &listener{Listener: ln, srv: s, conns: make(map[*conn]struct{})}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = s.Domain
	srv.MaxMessageBytes = s.MaxMessage
	srv.MaxRecipients = s.MaxRecipients
	srv.ReadTimeout = s.ReadTimeout
	srv.WriteTimeout = s.WriteTimeout
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = errorLog{s.log}
	s.srv = srv

	s.served = make(chan error, 1)
	go func() {
		err := srv.Serve(s.ln)
		if err != nil && s.ctx.Err() == nil {
			s.log.Error("smtp server stopped accepting connections", "err", err)
		}
		s.served <- err
	}()
	s.log.Info("listening", "addr", ln.Addr().String())
	return nil
}

// ListenAddr is the address the server listens on (with the port chosen
// when Addr asked for port 0), once Open has returned.
func (s *Server) ListenAddr() string {
	return s.ln.Addr().String()
}

// Close stops listening, cuts every connection (a message whose DATA is
// being stored is committed first, but its sender gets no reply and will
// send it again) and waits for every goroutine the server started.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	s.once.Do(func() {
		s.cancel()
		s.ln.shut()
		// Once Serve has returned no connection goroutine can start, and
		// Shutdown waits for those there are, which end now that their
		// connections are closed.
		select {
		case <-s.served:
		case <-ctx.Done():
			s.err = fmt.Errorf("smtpsink: close: %w", ctx.Err())
			return
		}
		err := s.srv.Shutdown(ctx)
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		if err != nil {
			s.err = fmt.Errorf("smtpsink: close: %w", err)
		}
	})
	return s.err
}

// sleep waits d, or until the server closes.
func (s *Server) sleep(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if s.Sleep != nil {
		return s.Sleep(s.ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// errorLog passes what go-smtp reports to the logger: a panic in a session
// is an error; a connection that failed is the client's business.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.log(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.log(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func (e errorLog) log(msg string) {
	if strings.HasPrefix(msg, "panic") {
		e.l.Error("smtp session panicked", "err", msg)
		return
	}
	e.l.Debug("smtp connection", "err", msg)
}
