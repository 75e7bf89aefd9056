package main

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callbin/callbin/frontend"
	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/sender"
	"github.com/callbin/callbin/smtpsink"
)

// Version returns the module version, or the VCS revision of a source
// build.
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}

var errHelp = errors.New("help requested")

//go:embed openapi.json
var openAPI []byte

// Main is the callbin process: its configuration, then what Open starts.
type Main struct {
	HTTPAddr   string
	SMTPAddr   string
	DataDir    string
	MaxBody    int64
	MaxMessage int64 // SMTP message size limit
	Retention  time.Duration
	AuthToken  string
	LogFormat  string
	Stderr     io.Writer

	TimeScale       float64       // sender clock speed
	SMTPRelay       string        // where e-mail callbacks go; "" for the built-in sink
	RetryPolicy     string        // scale, svix, stripe, standard-webhooks or a file
	CallbackTimeout time.Duration // per attempt
	AutoComplete    time.Duration // complete new tasks after this (sender clock); 0: never
	Seed            int64         // seeds the scenarios' chance draws; 0: from the time

	// ReadHeaderTimeout bounds how long a client may take to send its
	// request head (slowloris); the body has ReadTimeout.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration

	Logger  *slog.Logger
	Store   *inbox.Store
	Scripts *inbox.Scripts
	Sender  *sender.Engine
	SMTP    *smtpsink.Server
	Hub     *frontend.Hub
	Router  *mux.Router

	started chan struct{} // closed once Open has bound the listeners
	httpLn  net.Listener
	httpSrv *http.Server
	srvErr  chan error
	wg      sync.WaitGroup
}

// NewMain returns a Main with the defaults.
func NewMain() *Main {
	return &Main{
		HTTPAddr:   "127.0.0.1:8080",
		SMTPAddr:   "127.0.0.1:2525",
		DataDir:    "callbin-data",
		MaxBody:    inbox.DefaultMaxBody,
		MaxMessage: smtpsink.DefaultMaxMessage,
		LogFormat:  "text",
		Stderr:     os.Stderr,

		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,

		TimeScale:       1,
		RetryPolicy:     "scale",
		CallbackTimeout: 10 * time.Second,

		started: make(chan struct{}),
	}
}

// sizeValue is a flag of a byte size: 1048576, 512KiB, 10MiB, 1GB.
type sizeValue struct{ p *int64 }

func (v sizeValue) String() string {
	if v.p == nil {
		return ""
	}
	return formatSize(*v.p)
}

func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func formatSize(n int64) string {
	switch {
	case n > 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n > 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 512KiB or 10MiB", s)
	}
	return n * mult, nil
}

func (m *Main) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("callbin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&m.HTTPAddr, "http", m.HTTPAddr, "`address` of the HTTP server: UI, API, bins, stream")
	fs.StringVar(&m.SMTPAddr, "smtp", m.SMTPAddr, "`address` of the SMTP sink")
	fs.StringVar(&m.DataDir, "data", m.DataDir, "`folder` of the SQLite files")
	fs.Var(sizeValue{&m.MaxBody}, "max-body", "body `size` kept per capture; larger bodies are truncated and answered 413")
	fs.Var(sizeValue{&m.MaxMessage}, "max-message", "SMTP message `size` limit; larger messages get 552")
	fs.DurationVar(&m.Retention, "retention", m.Retention, "drop captures older than this `duration` (0 keeps everything)")
	fs.StringVar(&m.AuthToken, "auth-token", m.AuthToken, "when set, the API, UI and stream need this bearer `token`; capture endpoints stay open")
	fs.StringVar(&m.LogFormat, "log-format", m.LogFormat, "log `format`: text or json")
	fs.Float64Var(&m.TimeScale, "time-scale", m.TimeScale, "sender clock speed: 3600 makes one real second one hour (the 24 h retry ladder in 24 s)")
	fs.StringVar(&m.SMTPRelay, "smtp-relay", m.SMTPRelay, "host:port where e-mail callbacks go (default: the built-in SMTP sink)")
	fs.StringVar(&m.RetryPolicy, "retry-policy", m.RetryPolicy, "retry `policy`: scale, svix, stripe, standard-webhooks, or a YAML/JSON file")
	fs.DurationVar(&m.CallbackTimeout, "callback-timeout", m.CallbackTimeout, "how long one callback attempt may take (real time)")
	fs.DurationVar(&m.AutoComplete, "auto-complete", m.AutoComplete, "complete new tasks with a plausible response after this `delay` on the sender clock (0: only on request)")
	fs.Int64Var(&m.Seed, "seed", m.Seed, "`seed` of the scenarios' chance draws: the same seed gives the same run (0: from the time)")
	return fs
}

// ParseFlags reads args, falling back to CALLBIN_<NAME> variables (read
// through getenv) for flags not given.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	fs := m.flagSet()
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "CALLBIN_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && firstErr == nil {
			if err := f.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
	})
	if firstErr != nil {
		return firstErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(m.Stderr)
			return errHelp
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch m.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("-log-format %q: want text or json", m.LogFormat)
	}
	if m.Retention < 0 {
		return fmt.Errorf("-retention %s: want a positive duration or 0", m.Retention)
	}
	if !(m.TimeScale >= 1 && m.TimeScale <= 1e9) { // NaN too
		return fmt.Errorf("-time-scale %g: want a number from 1 to 1e9", m.TimeScale)
	}
	if m.CallbackTimeout <= 0 {
		return fmt.Errorf("-callback-timeout %s: want a positive duration", m.CallbackTimeout)
	}
	if m.AutoComplete < 0 {
		return fmt.Errorf("-auto-complete %s: want a positive duration or 0", m.AutoComplete)
	}
	if m.SMTPRelay != "" {
		if err := sender.CheckRelay(m.SMTPRelay); err != nil {
			return fmt.Errorf("-smtp-relay: %w", err)
		}
	}
	if _, err := sender.ParsePolicy(m.RetryPolicy); err != nil {
		return fmt.Errorf("-retry-policy: %w", err)
	}
	return nil
}

func (m *Main) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if m.LogFormat == "json" {
		m.Logger = slog.New(slog.NewJSONHandler(m.Stderr, opts))
	} else {
		m.Logger = slog.New(slog.NewTextHandler(m.Stderr, opts))
	}
	return m.Logger
}

// Open opens the stores and starts the servers. The listeners are bound
// when it returns: HTTPURL tells where.
func (m *Main) Open() (err error) {
	log := m.logger()
	defer func() {
		if err != nil { // undo what was opened
			m.Close(context.Background())
		}
	}()
	if err := os.MkdirAll(m.DataDir, 0o755); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := inbox.NewMetrics(reg)

	m.Hub = &frontend.Hub{
		Logger:  log,
		BinName: inbox.NormalizeBinName, // ?bin=Hook gets the events of bin hook
		Backlog: m.backlog,
		// The store is opened below; the hub asks only once it serves.
		Head: func(ctx context.Context) (int64, error) { return m.Store.LastCaptureID(ctx) },
	}
	m.Store = &inbox.Store{
		Path:      filepath.Join(m.DataDir, "inbox.db"),
		Retention: m.Retention,
		Events:    inboxEvents{m.Hub},
		Metrics:   metrics,
		Logger:    log.With("component", "inbox"),
	}
	if err := m.Store.Open(); err != nil {
		m.Store = nil
		return err
	}
	seed := m.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	m.Scripts = &inbox.Scripts{Store: m.Store, Seed: seed}
	smtp := &smtpsink.Server{
		Addr:       m.SMTPAddr,
		Store:      m.Store,
		Scripts:    m.Scripts,
		MaxMessage: m.MaxMessage,
		Metrics:    metrics,
		Logger:     log.With("component", "smtp"),
	}
	if err := smtp.Open(); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	m.SMTP = smtp
	if err := m.openSender(log); err != nil {
		return err
	}

	r := inbox.NewRouter()
	m.Router = r
	h := &inbox.Handler{
		Store:   m.Store,
		Scripts: m.Scripts,
		MaxBody: m.MaxBody,
		Metrics: metrics,
		Logger:  log.With("component", "inbox"),
		Version: Version(),
	}
	h.Register(r)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	}).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	r.HandleFunc("/api/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	}).Methods(http.MethodGet)
	m.Sender.Register(r)
	r.Handle("/api/v1/stream", m.Hub).Methods(http.MethodGet)
	// The UI takes every other GET outside the APIs: its pages are deep
	// links. A GET on an API route that takes other methods gets a 405:
	// the path test comes first, since a matcher of this route that
	// matched would clear the method mismatch an API route recorded.
	r.MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
		p := r.URL.Path
		return !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/v1/")
	}).Methods(http.MethodGet, http.MethodHead).Handler(frontend.UI())

	ln, err := net.Listen("tcp", m.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	m.httpLn = ln
	m.httpSrv = &http.Server{
		Handler:           m.authenticate(r),
		ReadHeaderTimeout: m.ReadHeaderTimeout,
		ReadTimeout:       m.ReadTimeout,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ConnContext:       inbox.ConnContext,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
	m.httpSrv.RegisterOnShutdown(func() { m.Hub.Close(context.Background()) })
	m.srvErr = make(chan error, 1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.httpSrv.Serve(inbox.RecordingListener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.srvErr <- fmt.Errorf("http: %w", err)
		}
	}()
	log.Info("callbin started", "version", Version(), "http", m.HTTPURL(), "smtp", m.SMTP.ListenAddr(), "data", m.DataDir)
	close(m.started)
	return nil
}

// Started is closed once Open has bound the listeners (for callers of Run).
func (m *Main) Started() <-chan struct{} { return m.started }

// HTTPURL is the base URL of the HTTP server, once Open has returned.
func (m *Main) HTTPURL() string {
	return "http://" + m.httpLn.Addr().String()
}

// Close shuts down in order: listeners (waiting for requests under way)
// and the stream, then the sender, then the stores.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.httpSrv != nil {
		if err := m.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			m.httpSrv.Close()
		}
		m.wg.Wait()
	}
	if m.SMTP != nil {
		if err := m.SMTP.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("smtp: %w", err))
		}
	}
	if m.Hub != nil {
		if err := m.Hub.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stream: %w", err))
		}
	}
	if m.Sender != nil {
		if err := m.Sender.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sender: %w", err))
		}
	}
	if m.Store != nil {
		if err := m.Store.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("inbox: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Run opens everything, serves until ctx ends (or a server fails), then
// closes in order.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Open(); err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		m.Logger.Info("shutting down")
	case runErr = <-m.srvErr:
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return errors.Join(runErr, m.Close(closeCtx))
}

// authenticate requires the auth token, when one is set, on everything that
// holds data: the API (/api/...), the task API (/v1/...) and /metrics. The
// capture endpoints, /healthz and the UI's static shell stay open (the
// page carries the token on its own calls). It takes "Authorization:
// Bearer TOKEN", basic auth with the token as user name or password (for
// clients of the task API), or ?access_token=TOKEN (for the websocket).
func (m *Main) authenticate(next http.Handler) http.Handler {
	if m.AuthToken == "" {
		return next
	}
	want := []byte(m.AuthToken)
	ok := func(got string) bool { return subtle.ConstantTimeCompare([]byte(got), want) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath() // what the router matches
		if !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/v1/") && p != "/metrics" {
			next.ServeHTTP(w, r)
			return
		}
		if bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && ok(bearer) {
			next.ServeHTTP(w, r)
			return
		}
		if user, pass, found := r.BasicAuth(); found && (ok(user) || ok(pass)) {
			next.ServeHTTP(w, r)
			return
		}
		if tok := r.URL.Query().Get("access_token"); tok != "" && ok(tok) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="callbin"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthorized","message":"this callbin needs its auth token: Authorization: Bearer TOKEN"}}`+"\n")
	})
}

// openSender opens the callback engine with its own database.
func (m *Main) openSender(log *slog.Logger) error {
	policy, err := sender.ParsePolicy(m.RetryPolicy)
	if err != nil {
		return fmt.Errorf("retry policy: %w", err)
	}
	relay := m.SMTPRelay
	if relay == "" {
		relay = m.SMTP.ListenAddr()
	}
	eng := &sender.Engine{
		Path:            filepath.Join(m.DataDir, "sender.db"),
		Policy:          policy,
		CallbackTimeout: m.CallbackTimeout,
		SMTPRelay:       relay,
		AutoComplete:    m.AutoComplete,
		Events:          senderEvents{m.Hub},
		Logger:          log,
	}
	if m.TimeScale != 1 {
		clock, err := sender.NewScaledClock(m.TimeScale)
		if err != nil {
			return fmt.Errorf("time scale: %w", err)
		}
		eng.Clock = clock
	}
	if err := eng.Open(); err != nil {
		return err
	}
	m.Sender = eng
	return nil
}

// backlog is how a stream client that resumes after a capture id gets what
// it missed.
func (m *Main) backlog(ctx context.Context, bin string, since int64, limit int) ([]frontend.Message, error) {
	caps, err := m.Store.FindCaptures(ctx, inbox.CaptureFilter{Bin: bin, After: since, Oldest: true, Limit: limit})
	if errors.Is(err, inbox.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	msgs := make([]frontend.Message, len(caps))
	for i, c := range caps {
		msgs[i] = frontend.Message{Bin: c.Bin, ID: c.ID, Data: inbox.CaptureEvent(c)}
	}
	return msgs, nil
}

// inboxEvents and senderEvents pass committed events to the live stream.
type inboxEvents struct{ hub *frontend.Hub }

func (p inboxEvents) Publish(e inbox.Event) {
	p.hub.Publish(frontend.Message{Bin: e.Bin, ID: e.ID, Data: e})
}

type senderEvents struct{ hub *frontend.Hub }

func (p senderEvents) Publish(e sender.Event) { p.hub.Publish(frontend.Message{Data: e}) }
