package run

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Runner plays run files against one callbin, over its HTTP API.
type Runner struct {
	// BaseURL is the callbin's HTTP address, such as http://127.0.0.1:8080.
	BaseURL string
	// Token is the callbin's --auth-token, when it has one.
	Token string
	// Shared says the callbin is not the run's own (--server): the file's
	// time_scale, callback_timeout and seed are not applied, and a note
	// says so.
	Shared bool
	// Client makes the API calls; nil: one with a 30 s timeout.
	Client *http.Client
	// Out gets the progress (each attempt as it happens) and the summary;
	// nil: discarded.
	Out io.Writer
	// Prefix is put before every bin name of the file so that runs on a
	// shared callbin do not collide; "": a random one per run, such as
	// "r4k2x9q1m-".
	Prefix string
	// Poll is how often a task's callbacks are read while the runner
	// waits for them (the live stream also wakes it); 0: 50 ms.
	Poll time.Duration
}

// Result is the outcome of one run file.
type Result struct {
	File    *File
	Bins    map[string]BinInfo // by the bin's name in the file
	Elapsed time.Duration
	Checks  []CheckResult // one per expectation, in order; empty when the run did not get that far
	// Err is why the run could not be carried out as written (a bin or a
	// task refused, the timeout reached); the checks then say what was
	// seen anyway.
	Err error
	// Skipped is why the file was not run at all, set by the caller (for
	// instance: it needs an SMTP sink that is not there); "" when it ran.
	Skipped string
	// Observation is what was read back from the callbin.
	Observation *Observation
}

// CheckResult is one expectation and how it fared.
type CheckResult struct {
	Expectation *Expectation
	Failures    []string // "FIELD: got X, want Y"; none when met
}

// Passed reports whether the expectation was met.
func (c CheckResult) Passed() bool { return len(c.Failures) == 0 }

// Passed reports whether the file ran and met every expectation.
func (r *Result) Passed() bool {
	if r.Err != nil || r.Skipped != "" || len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.Passed() {
			return false
		}
	}
	return true
}

// Failed counts the expectations not met.
func (r *Result) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if !c.Passed() {
			n++
		}
	}
	return n
}

// ErrTimeout is wrapped by the Result.Err of a run that reached its
// timeout before its tasks settled.
var ErrTimeout = errors.New("run timed out")

// printer serializes output from the runner and the stream reader.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

// NewPrefix returns a random bin-name prefix such as "r4k2x9q1m-".
func NewPrefix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "r" + string(b) + "-"
}

// Run plays f: it creates the bins (each under the prefix) with their
// scenarios, creates and drives the tasks (one after another, or all at
// once with parallel: true, each step once the task's callbacks so far are
// decided), waits until every task's callbacks are decided (at most
// f.Timeout), reads back the tasks, their attempts and the bins' captures,
// and checks the expectations. It prints each attempt as the live stream
// brings it, then one line per expectation. Bins are left in place, to be
// looked at.
func (r *Runner) Run(ctx context.Context, f *File) *Result {
	start := time.Now()
	out := &printer{w: r.Out}
	if out.w == nil {
		out.w = io.Discard
	}
	res := &Result{File: f, Bins: map[string]BinInfo{}}
	defer func() { res.Elapsed = time.Since(start) }()

	title := f.Name
	if f.Path != "" {
		title += " (" + f.Path + ")"
	}
	out.printf("=== RUN   %s\n", title)
	if r.Shared {
		for _, n := range sharedNotes(f) {
			out.printf("    note: %s\n", n)
		}
	}

	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	a := &api{base: strings.TrimSuffix(r.BaseURL, "/"), token: r.Token, client: client}
	prefix := r.Prefix
	if prefix == "" {
		prefix = NewPrefix()
	}
	poll := r.Poll
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}

	runCtx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()

	w := watch(runCtx, a.base, r.Token, out)
	defer w.close()

	obs := &Observation{Tasks: make([]TaskObservation, len(f.Tasks)), Bins: map[string][]Capture{}}
	res.Observation = obs
	if err := r.setUpBins(runCtx, a, f, prefix, res, out); err != nil {
		res.Err = err
		out.printf("--- ERROR: %s: %v\n", f.Name, err)
		return res
	}

	d := &driver{api: a, file: f, exp: expander(res.Bins), out: out, watch: w, poll: poll, obs: obs}
	if f.Parallel {
		var wg sync.WaitGroup
		for i := range f.Tasks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.task(runCtx, i)
			}()
		}
		wg.Wait()
	} else {
		for i := range f.Tasks {
			d.task(runCtx, i)
		}
	}
	for i, t := range obs.Tasks {
		if t.Err != "" && res.Err == nil {
			res.Err = fmt.Errorf("task %d: %s", i, t.Err)
		}
	}
	switch {
	case res.Err != nil:
	case ctx.Err() != nil:
		res.Err = fmt.Errorf("interrupted: %w", ctx.Err())
	case runCtx.Err() != nil:
		res.Err = fmt.Errorf("%w after %s: some tasks' callbacks were not decided", ErrTimeout, f.Timeout)
	}

	// Read back what happened, with a little time of its own when the run
	// used all of its.
	readCtx, cancelRead := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancelRead()
	if ctx.Err() != nil {
		readCtx = ctx
	}
	if err := d.readBack(readCtx, res); err != nil && res.Err == nil {
		res.Err = err
	}

	for i := range f.Expect {
		e := &f.Expect[i]
		res.Checks = append(res.Checks, CheckResult{Expectation: e, Failures: e.Check(obs)})
	}
	r.summary(out, res, start)
	return res
}

// sharedNotes says which settings of the file a shared callbin ignores.
func sharedNotes(f *File) []string {
	var notes []string
	if f.TimeScale != 0 {
		notes = append(notes, fmt.Sprintf("time_scale %g is not applied: the server's clock is used", f.TimeScale))
	}
	if f.CallbackTimeout != 0 {
		notes = append(notes, fmt.Sprintf("callback_timeout %s is not applied: the server's is used", f.CallbackTimeout))
	}
	if f.Seed != 0 {
		notes = append(notes, fmt.Sprintf("seed %d is not applied: the server's seed drives chance steps", f.Seed))
	}
	return notes
}

// setUpBins creates every bin under the prefix, then sets the scenarios,
// whose templates may name any bin.
func (r *Runner) setUpBins(ctx context.Context, a *api, f *File, prefix string, res *Result, out *printer) error {
	for _, b := range f.Bins {
		got, err := a.createBin(ctx, prefix+b.Name)
		if err != nil {
			return fmt.Errorf("bin %s: %w", b.Name, err)
		}
		res.Bins[b.Name] = BinInfo{Name: got.Name, URL: got.URL, Email: got.Email}
	}
	x := expander(res.Bins)
	for _, b := range f.Bins {
		info := res.Bins[b.Name]
		src := "default reply"
		if b.Scenario != nil {
			js, err := jsonText(x.expandScript(b.Scenario))
			if err != nil {
				return fmt.Errorf("bin %s: encode scenario: %w", b.Name, err)
			}
			if err := a.putScenario(ctx, info.Name, js); err != nil {
				return fmt.Errorf("bin %s: scenario: %w", b.Name, err)
			}
			src = b.Source
		}
		out.printf("    bin %s = %s (%s)\n", b.Name, info.URL, src)
	}
	return nil
}

// driver creates and drives the tasks of one run.
type driver struct {
	api   *api
	file  *File
	exp   expander
	out   *printer
	watch *watcher
	poll  time.Duration
	obs   *Observation // each task goroutine writes only its own entry
}

// task creates task i, takes its steps, and waits until its callbacks are
// decided, recording in obs.Tasks[i] what went wrong, if anything.
func (d *driver) task(ctx context.Context, i int) {
	t := &d.file.Tasks[i]
	o := &d.obs.Tasks[i]
	if ctx.Err() != nil {
		return // the run timed out before this task's turn
	}
	req, _ := d.exp.expandValue(t.Request).(map[string]any)
	created, err := d.api.createTask(ctx, t.Type, req)
	var ae *APIError
	switch {
	case err != nil && ctx.Err() != nil:
		return
	case err == nil:
		o.ID = created.TaskID
		d.out.printf("    task %d: created %s (%s)\n", i, o.ID, t.Type)
	case errors.As(err, &ae) && ae.TaskID != "":
		// A refused creation that still made a task in status error: its
		// error callback is part of the run.
		o.ID = ae.TaskID
		d.out.printf("    task %d: created %s in status error: %s\n", i, o.ID, ae.Message)
	default:
		o.Err = "create: " + err.Error()
		d.out.printf("    task %d: %s\n", i, o.Err)
		return
	}
	wake := d.watch.add(o.ID, i)
	for _, st := range t.Steps {
		if err := d.settle(ctx, o, wake); err != nil {
			if ctx.Err() == nil {
				o.Err = fmt.Sprintf("before step %s: %v", st.Action, err)
			}
			return // at the timeout: the task did not settle, which its checks say
		}
		d.out.printf("    task %d: %s\n", i, st.Action)
		if err := d.api.step(ctx, o.ID, Step{Action: st.Action, Body: d.exp.expandValue(st.Body)}); err != nil {
			if ctx.Err() != nil {
				return
			}
			o.Err = fmt.Sprintf("step %s: %v", st.Action, err)
			d.out.printf("    task %d: %s\n", i, o.Err)
			return
		}
	}
	if err := d.settle(ctx, o, wake); err != nil && ctx.Err() == nil {
		o.Err = err.Error()
	}
}

// settle waits until every delivery of the task is decided.
func (d *driver) settle(ctx context.Context, o *TaskObservation, wake <-chan struct{}) error {
	for {
		ds, err := d.api.deliveries(ctx, o.ID)
		if err == nil {
			o.Settled = true
			for _, dl := range ds {
				if !dl.Decided() {
					o.Settled = false
				}
			}
			if o.Settled {
				return nil
			}
		} else if ctx.Err() == nil {
			return err
		}
		t := time.NewTimer(d.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			o.Settled = false
			return ctx.Err()
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// readBack reads every task, its deliveries and the bins' captures into the
// observation.
func (d *driver) readBack(ctx context.Context, res *Result) error {
	obs := res.Observation
	for i := range obs.Tasks {
		o := &obs.Tasks[i]
		if o.ID == "" {
			continue
		}
		t, err := d.api.getTask(ctx, o.ID)
		if err != nil {
			return fmt.Errorf("read task %d: %w", i, err)
		}
		o.Status, o.CallbackSucceeded = t.Status, t.CallbackSucceeded
		if o.Deliveries, err = d.api.deliveries(ctx, o.ID); err != nil {
			return fmt.Errorf("read callbacks of task %d: %w", i, err)
		}
	}
	full := map[string]bool{}
	for _, e := range d.file.Expect {
		if e.BodyContains != "" || e.SubjectContains != "" {
			full[e.Bin] = true
		}
	}
	for _, b := range d.file.Bins {
		caps, err := d.api.captures(ctx, res.Bins[b.Name].Name, full[b.Name])
		if err != nil {
			return fmt.Errorf("read captures of bin %s: %w", b.Name, err)
		}
		obs.Bins[b.Name] = caps
	}
	return nil
}

// summary prints one line per expectation, the attempts of the tasks whose
// expectations failed, and the verdict.
func (r *Runner) summary(out *printer, res *Result, start time.Time) {
	failedTasks := map[int]bool{}
	for _, c := range res.Checks {
		e := c.Expectation
		if c.Passed() {
			out.printf("    ok    %s (line %d)\n", e.Title(), e.Line)
			continue
		}
		out.printf("    FAIL  %s (line %d)\n", e.Title(), e.Line)
		for _, f := range c.Failures {
			out.printf("            %s\n", f)
		}
		if !e.IsBin() {
			failedTasks[e.Task] = true
		}
	}
	for i := range res.Observation.Tasks {
		if !failedTasks[i] {
			continue
		}
		o := res.Observation.Tasks[i]
		out.printf("    attempts of task %d (%s):\n", i, o.ID)
		for _, dl := range o.Deliveries {
			for _, a := range dl.Attempts {
				out.printf("      %s #%d at %s: %s\n", dl.Event, a.N, a.At.Format("15:04:05.000"), a.Result())
			}
		}
	}
	verdict := "PASS"
	switch {
	case res.Err != nil:
		verdict = "ERROR"
		out.printf("    error: %v\n", res.Err)
	case !res.Passed():
		verdict = "FAIL"
	}
	out.printf("--- %s: %s (%d of %d expectations met, %s)\n", verdict, res.File.Name,
		len(res.Checks)-res.Failed(), len(res.Checks), time.Since(start).Round(time.Millisecond))
}
