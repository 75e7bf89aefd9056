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

// trigger runs `callbin trigger` and returns the exit code.
func trigger(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("trigger", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		to      = fs.String("to", "", "where to send it: an http(s) URL, an e-mail address or mailto:")
		authKey = fs.String("auth-key", "", "value of the scale-callback-auth header")
		secret  = fs.String("signing-secret", "", "whsec_... secret to sign with Standard Webhooks headers")
		relay   = fs.String("smtp-relay", "127.0.0.1:2525", "host:port for e-mail targets")
		timeout = fs.Duration("timeout", 10*time.Second, "how long the receiver may take")
		typ     = fs.String("type", "categorization", "task type of the made-up task: categorization or generic")
	)
	usage := func() {
		fmt.Fprintf(stderr, triggerUsage, strings.Join(sender.TriggerEvents(), ", "))
		fs.SetOutput(stderr)
		fs.PrintDefaults()
	}
	// The event comes first; flags may follow it.
	var event string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		event, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			usage()
			return 0
		}
		fmt.Fprintln(stderr, "callbin trigger:", err)
		return 2
	}
	rest := fs.Args()
	if event == "" && len(rest) > 0 {
		event, rest = rest[0], rest[1:]
	}
	switch {
	case event == "":
		fmt.Fprintf(stderr, "callbin trigger: which event? One of %s\n\n", strings.Join(sender.TriggerEvents(), ", "))
		usage()
		return 2
	case *to == "":
		fmt.Fprint(stderr, "callbin trigger: --to is required: an http(s) URL or an e-mail address\n\n")
		usage()
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
