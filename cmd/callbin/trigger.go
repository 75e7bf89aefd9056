package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/callbin/callbin/sender"
)

const triggerUsage = `Usage: callbin trigger EVENT --to URL|ADDRESS [flags]

Sends one callback of EVENT (%s) for a made-up task to an http(s) URL
or an e-mail address, once, and prints what the receiver answered. Exits 1
when the receiver did not accept it.

Flags:
`

// command is a subcommand's flags and usage text (printed before them).
type command struct {
	name  string // e.g. "trigger"
	usage string
	fs    *flag.FlagSet
}

func newCommand(name, usage string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &command{name: name, usage: usage, fs: fs}
}

// printUsage prints the usage text and the flags.
func (c *command) printUsage(w io.Writer) {
	fmt.Fprint(w, c.usage)
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

// parse parses args, whose one positional argument may come before or
// after the flags; rest is whatever else was given. When it returns
// done, the command ends with code (0 for -h, 2 for a bad flag), its
// usage or error already printed.
func (c *command) parse(args []string, stderr io.Writer) (arg string, rest []string, code int, done bool) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		arg, args = args[0], args[1:]
	}
	if err := c.fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			c.printUsage(stderr)
			return "", nil, 0, true
		}
		fmt.Fprintf(stderr, "callbin %s: %v\n", c.name, err)
		return "", nil, 2, true
	}
	rest = c.fs.Args()
	if arg == "" && len(rest) > 0 {
		arg, rest = rest[0], rest[1:]
	}
	return arg, rest, 0, false
}

// trigger runs `callbin trigger` and returns the exit code.
func trigger(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := newCommand("trigger", fmt.Sprintf(triggerUsage, strings.Join(sender.TriggerEvents(), ", ")))
	fs := cmd.fs
	var (
		to      = fs.String("to", "", "where to send it: an http(s) URL, an e-mail address or mailto:")
		authKey = fs.String("auth-key", "", "value of the scale-callback-auth header")
		secret  = fs.String("signing-secret", "", "whsec_... secret to sign with Standard Webhooks headers")
		relay   = fs.String("smtp-relay", "127.0.0.1:2525", "host:port for e-mail targets")
		timeout = fs.Duration("timeout", 10*time.Second, "how long the receiver may take")
		typ     = fs.String("type", "categorization", "task type of the made-up task: categorization or generic")
	)
	event, rest, code, done := cmd.parse(args, stderr)
	if done {
		return code
	}
	switch {
	case event == "":
		fmt.Fprintf(stderr, "callbin trigger: which event? One of %s\n\n", strings.Join(sender.TriggerEvents(), ", "))
		cmd.printUsage(stderr)
		return 2
	case *to == "":
		fmt.Fprint(stderr, "callbin trigger: --to is required: an http(s) URL or an e-mail address\n\n")
		cmd.printUsage(stderr)
		return 2
	case len(rest) > 0:
		fmt.Fprintf(stderr, "callbin trigger: unexpected argument %q\n", rest[0])
		return 2
	}
	res, err := sender.Trigger(ctx, event, *to, sender.TriggerOptions{
		AuthKey: *authKey, SigningSecret: *secret, SMTPRelay: *relay, Timeout: *timeout, Type: *typ,
	})
	if err != nil {
		fmt.Fprintln(stderr, "callbin", err)
		return 2
	}
	fmt.Fprintf(stdout, "sent %s callback to %s\n", res.Event, res.Target)
	switch {
	case res.OK:
		fmt.Fprintf(stdout, "accepted: %d in %s\n", res.Status, res.Latency.Round(time.Microsecond))
	case res.Status != 0:
		fmt.Fprintf(stdout, "refused: %d (%s) in %s\n", res.Status, res.Error, res.Latency.Round(time.Microsecond))
	default:
		fmt.Fprintf(stdout, "failed: %s (%s) after %s\n", res.Error, res.Class, res.Latency.Round(time.Microsecond))
	}
	for _, h := range res.ReplyHeaders {
		fmt.Fprintf(stdout, "%s: %s\n", h[0], h[1])
	}
	if len(res.ReplyBody) > 0 {
		fmt.Fprintf(stdout, "\n%s\n", res.ReplyBody)
	}
	if !res.OK {
		return 1
	}
	return 0
}
