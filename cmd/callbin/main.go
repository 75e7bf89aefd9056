// Command callbin is a local sandbox for webhooks and callbacks: bins that
// capture HTTP requests and e-mail, a callback sender with durable retries,
// scripted failure scenarios and a live view in the browser, in one process.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches the subcommands and returns the exit code: 0, 1 for a
// failure, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		m := NewMain()
		m.Stderr = stderr
		if err := m.ParseFlags(args, os.Getenv); err != nil {
			return usageError(stderr, err)
		}
		if err := m.Run(ctx); err != nil {
			fmt.Fprintln(stderr, "callbin:", err)
			return 1
		}
		return 0
	case "trigger":
		return trigger(ctx, args, os.Getenv, stdout, stderr)
	case "check":
		return check(ctx, args, stdout, stderr)
	case "demo":
		return demo(ctx, args, os.Getenv, stdout, stderr)
	case "scenario":
		return scenarioCmd(ctx, args, os.Getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "callbin", Version())
		return 0
	case "help":
		printUsage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "callbin: unknown command %q\n\n", cmd)
		printUsage(stderr)
		return 2
	}
}

// printUsage prints the commands and the flags of serve.
func printUsage(w io.Writer) {
	fmt.Fprint(w, usage)
	fs := NewMain().flagSet()
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func usageError(stderr io.Writer, err error) int {
	if errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "callbin:", err)
	return 2
}

const usage = `callbin: a local sandbox for webhooks and callbacks.

Usage:
  callbin [serve] [flags]   start the server (the default)
  callbin trigger EVENT --to URL
                            send one callback (completed, error, audit, recall)
  callbin check URL         try a callback handler with duplicates, out-of-order
                            events, forged keys and signatures; report what it handled
  callbin scenario run [flags] FILE...
                            play run files (bins, tasks, expectations) and check them
  callbin demo [flags]      serve, seeded with bins and tasks whose callbacks
                            fail and retry live (see callbin demo --help)
  callbin version           print the version
  callbin help              print this help

Flags of serve (each has an environment twin CALLBIN_<NAME>, e.g.
CALLBIN_HTTP; a flag wins over its variable):
`
