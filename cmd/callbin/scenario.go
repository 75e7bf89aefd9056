package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	scenariorun "github.com/callbin/callbin/scenarios/run"
)

const scenarioUsage = `Usage:
  callbin scenario run [flags] FILE...

Runs each run file (bins with scenarios, tasks, expectations; see
scenarios/examples/run/) against a callbin of its own, started on free
loopback ports with its data in a temporary folder and the file's
time_scale, callback_timeout and seed, or against --server. Prints each
callback attempt as it happens and one line per expectation.

Exit code: 0 when every expectation is met, 1 when one is not (or a file
could not be run), 2 for a usage error (no files, an unknown flag, a file
that cannot be read or is not a valid run file).

Flags:
`

// scenarioConfig is what `callbin scenario run` was asked to do.
type scenarioConfig struct {
	Server    string // "" for an in-process callbin per file
	AuthToken string // of --server
	JUnit     string // report path, "" for none
	Files     []string

	Stdout, Stderr io.Writer
}

// scenarioCmd runs `callbin scenario SUBCOMMAND ...` and returns the exit
// code.
func scenarioCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "run" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fs := scenarioFlags(&scenarioConfig{})
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, scenarioUsage)
			fs.PrintDefaults()
			return 0
		}
		what := "no subcommand"
		if len(args) > 0 {
			what = fmt.Sprintf("unknown subcommand %q", args[0])
		}
		fmt.Fprintf(stderr, "callbin scenario: %s; want run\n\n%s", what, scenarioUsage)
		return 2
	}
	cfg := &scenarioConfig{Stdout: stdout, Stderr: stderr}
	if err := cfg.parse(args[1:], getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs := scenarioFlags(&scenarioConfig{})
			fs.SetOutput(stdout)
			fmt.Fprint(stdout, scenarioUsage)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "callbin scenario run: %v\n", err)
		return 2
	}
	files := make([]*scenariorun.File, 0, len(cfg.Files))
	bad := false
	for _, path := range cfg.Files {
		f, err := scenariorun.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "callbin scenario run: %v\n", err)
			bad = true
			continue
		}
		files = append(files, f)
	}
	if bad {
		return 2
	}
	var junit *os.File
	if cfg.JUnit != "" {
		var err error
		if junit, err = os.Create(cfg.JUnit); err != nil {
			fmt.Fprintf(stderr, "callbin scenario run: -junit: %v\n", err)
			return 2
		}
		defer junit.Close()
	}

	var results []*scenariorun.Result
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		results = append(results, cfg.runFile(ctx, f))
	}
	code := 0
	passed, failed, skipped := 0, 0, 0
	for _, r := range results {
		switch {
		case r.Skipped != "":
			skipped++
			code = 1
		case r.Passed():
			passed++
		default:
			failed++
			code = 1
		}
	}
	if len(results) < len(files) {
		code = 1
		fmt.Fprintf(stdout, "interrupted: %d of %d files not run\n", len(files)-len(results), len(files))
	}
	noun := "files"
	if len(results) == 1 {
		noun = "file"
	}
	fmt.Fprintf(stdout, "%d %s: %d passed, %d failed, %d skipped\n", len(results), noun, passed, failed, skipped)
	if junit != nil {
		if err := scenariorun.WriteJUnit(junit, results); err != nil {
			fmt.Fprintf(stderr, "callbin scenario run: -junit: %v\n", err)
			return 1
		}
		if err := junit.Close(); err != nil {
			fmt.Fprintf(stderr, "callbin scenario run: -junit: %v\n", err)
			return 1
		}
	}
	return code
}

func scenarioFlags(cfg *scenarioConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("callbin scenario run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Server, "server", cfg.Server, "run against the callbin at this `URL` instead of one of its own (its clock, callback timeout and seed are then the server's)")
	fs.StringVar(&cfg.AuthToken, "auth-token", cfg.AuthToken, "the --server's auth `token`, if it has one (default $CALLBIN_AUTH_TOKEN)")
	fs.StringVar(&cfg.JUnit, "junit", cfg.JUnit, "write a JUnit XML report to this `file`: one testsuite per run file, one testcase per expectation")
	return fs
}

// parse reads the flags and the files; flags may come after files.
func (cfg *scenarioConfig) parse(args []string, getenv func(string) string) error {
	fs := scenarioFlags(cfg)
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			cfg.Files = append(cfg.Files, args[1:]...)
			break
		}
		cfg.Files = append(cfg.Files, args[0])
		args = args[1:]
	}
	if len(cfg.Files) == 0 {
		return errors.New("no run files given; usage: callbin scenario run [flags] FILE...")
	}
	if cfg.Server != "" {
		u, err := url.Parse(cfg.Server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-server %q: want the callbin's base URL, such as http://127.0.0.1:8080", cfg.Server)
		}
		if cfg.AuthToken == "" {
			cfg.AuthToken = getenv("CALLBIN_AUTH_TOKEN")
		}
	} else if cfg.AuthToken != "" {
		return errors.New("-auth-token goes with -server (a callbin of the run's own has a token of its own)")
	}
	return nil
}

// errNoSMTP is why a run file that sends e-mail is skipped.
var errNoSMTP = errors.New("this callbin does not serve SMTP")

// runFile plays one run file, against --server or a callbin of its own.
func (cfg *scenarioConfig) runFile(ctx context.Context, f *scenariorun.File) *scenariorun.Result {
	if cfg.Server != "" {
		r := &scenariorun.Runner{BaseURL: cfg.Server, Token: cfg.AuthToken, Shared: true, Out: cfg.Stdout}
		return r.Run(ctx, f)
	}
	m, token, err := cfg.openSandbox(f)
	if err != nil {
		fmt.Fprintf(cfg.Stdout, "--- ERROR: %s: %v\n", f.Name, err)
		return &scenariorun.Result{File: f, Err: err}
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if err := m.Close(closeCtx); err != nil {
			fmt.Fprintf(cfg.Stderr, "callbin scenario run: closing the sandbox of %s: %v\n", f.Name, err)
		}
		os.RemoveAll(m.DataDir)
	}()
	if f.UsesEmail() {
		addr := m.SMTPAddr
		if m.SMTP != nil {
			addr = m.SMTP.ListenAddr()
		}
		if err := smtpAnswers(ctx, addr); err != nil {
			why := fmt.Sprintf("it sends e-mail, and %v yet (%v)", errNoSMTP, err)
			fmt.Fprintf(cfg.Stdout, "--- SKIP: %s: %s\n", f.Name, why)
			return &scenariorun.Result{File: f, Skipped: why}
		}
	}
	r := &scenariorun.Runner{BaseURL: m.HTTPURL(), Token: token, Out: cfg.Stdout}
	return r.Run(ctx, f)
}

// openSandbox starts a callbin for one run file: free loopback ports
// (HTTP and SMTP), a temporary data folder, an auth token, and the file's
// clock speed, callback timeout and seed.
func (cfg *scenarioConfig) openSandbox(f *scenariorun.File) (*Main, string, error) {
	dir, err := os.MkdirTemp("", "callbin-scenario-")
	if err != nil {
		return nil, "", fmt.Errorf("data folder: %w", err)
	}
	tok := make([]byte, 16)
	rand.Read(tok)
	token := hex.EncodeToString(tok)
	m := NewMain()
	m.HTTPAddr = "127.0.0.1:0"
	m.SMTPAddr = "127.0.0.1:0"
	m.DataDir = dir
	m.AuthToken = token
	m.Stderr = cfg.Stderr
	m.Logger = slog.New(slog.NewTextHandler(cfg.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if f.TimeScale != 0 {
		m.TimeScale = f.TimeScale
	}
	if f.CallbackTimeout != 0 {
		m.CallbackTimeout = f.CallbackTimeout
	}
	m.Seed = f.Seed
	if err := m.Open(); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start a callbin: %w", err)
	}
	return m, token, nil
}

// smtpAnswers reports whether an SMTP server greets at addr.
func smtpAnswers(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("nothing answers SMTP at %s", addr)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "220") {
		return fmt.Errorf("no SMTP greeting at %s (got %q)", addr, strings.TrimSpace(line))
	}
	fmt.Fprint(conn, "QUIT\r\n")
	return nil
}
