package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/callbin/callbin/sender"
)

const checkUsage = `Usage: callbin check URL [flags]

Tries the callback handler at URL the way a hostile world would and prints
what it handled: a callback of every event, a delivery sent twice, an audit
and a recall that arrive before their completion, unknown fields, a missing
or wrong auth key and a bad signature (which it must refuse), and how fast
it answers. Each callback is sent once, for made-up tasks. Exits 1 when a
check fails.

Flags:
`

// check runs `callbin check` and returns the exit code.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newCommand("check", checkUsage)
	fs := cmd.fs
	var (
		authKey = fs.String("auth-key", "", "the scale-callback-auth value the handler expects (checks that others are refused)")
		secret  = fs.String("signing-secret", "", "the whsec_... secret the handler verifies signatures with (checks that bad ones are refused)")
		timeout = fs.Duration("timeout", 10*time.Second, "how long a callback may take, as the sender's --callback-timeout")
		typ     = fs.String("type", "categorization", "task type of the made-up tasks: categorization or generic")
		asJSON  = fs.Bool("json", false, "print the results as JSON")
	)
	url, rest, code, done := cmd.parse(args, stderr)
	if done {
		return code
	}
	switch {
	case url == "":
		fmt.Fprint(stderr, "callbin check: which URL? The callback handler to try\n\n")
		cmd.printUsage(stderr)
		return 2
	case len(rest) > 0:
		fmt.Fprintf(stderr, "callbin check: unexpected argument %q\n", rest[0])
		return 2
	}
	results, err := sender.Check(ctx, url, sender.CheckOptions{AuthKey: *authKey, SigningSecret: *secret, Timeout: *timeout, Type: *typ})
	if err != nil {
		fmt.Fprintln(stderr, "callbin", err)
		return 2
	}
	failed := 0
	counts := map[string]int{}
	for _, r := range results {
		counts[r.Verdict]++
		if r.Verdict == sender.CheckFail {
			failed++
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"url": url, "results": results, "passed": counts[sender.CheckPass],
			"failed": failed, "warnings": counts[sender.CheckWarn], "skipped": counts[sender.CheckSkip]})
	} else {
		fmt.Fprintf(stdout, "callbin check %s\n\n", url)
		for _, r := range results {
			fmt.Fprintf(stdout, "%-4s  %-44s %s\n", strings.ToUpper(r.Verdict), r.Name, r.Detail)
		}
		fmt.Fprintf(stdout, "\n%d passed, %d failed, %d warnings, %d skipped\n",
			counts[sender.CheckPass], failed, counts[sender.CheckWarn], counts[sender.CheckSkip])
	}
	if failed > 0 {
		return 1
	}
	return 0
}
