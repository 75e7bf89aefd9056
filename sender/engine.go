package sender

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Engine is the callback sender: tasks, the durable delivery queue, retries,
// transports. Set the fields, call Open, Register its routes, and Close it.
type Engine struct {
	Path            string        // SQLite file, e.g. data/sender.db (own schema, embedded migrations)
	Clock           Clock         // nil: the wall clock; NewScaledClock(n) for --time-scale
	Policy          Policy        // zero: DefaultPolicy (the "scale" policy)
	CallbackTimeout time.Duration // per attempt, real time; 0: 10 s
	SMTPRelay       string        // host:port where e-mail callbacks go; "": e-mail attempts fail (class config)
	AutoComplete    time.Duration // 0: off; else complete new tasks after this clock delay
	Workers         int           // concurrent attempts; 0: 32
	Events          Publisher     // may be nil; gets events after commit
	Logger          *slog.Logger  // nil: slog.Default()

	log     *slog.Logger
	clock   Clock
	policy  Policy
	wdb     *sql.DB    // the one write connection
	rdb     *sql.DB    // read pool
	stmts   *stmtCache // write connection
	rstmts  *stmtCache // read pool
	tr      *transport
	profile atomic.Pointer[Profile]

	wake       chan struct{}
	ops        chan *writeOp
	stopWriter chan struct{}
	writerDone chan struct{}
	jobs       chan *job
	results    chan *result
	inflight   atomic.Int64
	wakeups    atomic.Int64 // scheduler loop turns, for tests of idleness

	stopSched  context.CancelFunc
	stopSends  context.CancelFunc
	schedDone  chan struct{}
	workersWG  sync.WaitGroup
	finishDone chan struct{}
	opened     atomic.Bool
	closeOnce  sync.Once
}

// job is one claimed attempt.
type job struct {
	delivery  int64
	taskID    string
	event     string
	target    string
	webhookID string
	payload   []byte
	n         int
	dueAt     time.Time
	startedAt time.Time
}

type result struct {
	job *job
	out Outcome
}

// Open validates the settings, opens the database, resumes in-flight
// deliveries and starts the scheduler, the workers and the result writer.
func (e *Engine) Open() error {
	if e.opened.Load() {
		return fmt.Errorf("open sender: already open")
	}
	e.log = e.Logger
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("component", "sender")
	e.clock = e.Clock
	if e.clock == nil {
		e.clock = RealClock{}
	}
	e.policy = e.Policy
	if e.policy.isZero() {
		e.policy = DefaultPolicy()
	}
	if len(e.policy.Delays) > maxRetries || e.policy.Jitter < 0 || e.policy.Jitter > maxJitter {
		return fmt.Errorf("open sender: %w: at most %d retries and jitter in [0, %v]", ErrBadPolicy, maxRetries, maxJitter)
	}
	for i, d := range e.policy.Delays {
		if d <= 0 {
			return fmt.Errorf("open sender: %w: delays[%d] must be positive", ErrBadPolicy, i)
		}
	}
	if e.CallbackTimeout == 0 {
		e.CallbackTimeout = 10 * time.Second
	}
	if e.CallbackTimeout < 0 {
		return fmt.Errorf("open sender: %w: CallbackTimeout %s is negative", ErrInvalid, e.CallbackTimeout)
	}
	if e.AutoComplete < 0 {
		return fmt.Errorf("open sender: %w: AutoComplete %s is negative", ErrInvalid, e.AutoComplete)
	}
	if e.Workers == 0 {
		e.Workers = 32
	}
	if e.Workers < 0 || e.Workers > 4096 {
		return fmt.Errorf("open sender: %w: Workers %d not in 1..4096", ErrInvalid, e.Workers)
	}
	if e.SMTPRelay != "" {
		if _, _, err := net.SplitHostPort(e.SMTPRelay); err != nil {
			return fmt.Errorf("open sender: %w: SMTPRelay %q is not host:port", ErrInvalid, e.SMTPRelay)
		}
	}
	ctx := context.Background()
	wdb, rdb, err := openDB(ctx, e.Path)
	if err != nil {
		return fmt.Errorf("open sender: %w", err)
	}
	e.wdb, e.rdb = wdb, rdb
	e.stmts, e.rstmts = newStmtCache(wdb), newStmtCache(rdb)
	if err := e.loadProfile(ctx); err != nil {
		e.closeDBs()
		return fmt.Errorf("open sender: %w", err)
	}
	if r, ok := e.clock.(resumer); ok {
		var last sql.NullInt64
		err := e.wdb.QueryRowContext(ctx, `SELECT MAX(t) FROM (
			SELECT MAX(updated_at) AS t FROM tasks UNION ALL SELECT MAX(updated_at) FROM deliveries)`).Scan(&last)
		if err != nil {
			e.closeDBs()
			return fmt.Errorf("open sender: read last clock time: %w", err)
		}
		if last.Valid {
			r.Resume(fromNS(last.Int64))
		}
	}
	n, err := e.recoverInFlight(ctx)
	if err != nil {
		e.closeDBs()
		return fmt.Errorf("open sender: %w", err)
	}
	if n > 0 {
		e.log.Info("resumed deliveries interrupted mid-attempt", "count", n)
	}
	e.tr = newTransport(e.CallbackTimeout, e.SMTPRelay, e.Workers)
	e.wake = make(chan struct{}, 1)
	e.ops = make(chan *writeOp)
	e.stopWriter = make(chan struct{})
	e.writerDone = make(chan struct{})
	go e.runWriter()
	e.jobs = make(chan *job, e.Workers)
	e.results = make(chan *result, e.Workers)
	e.schedDone = make(chan struct{})
	e.finishDone = make(chan struct{})
	schedCtx, stopSched := context.WithCancel(context.Background())
	sendCtx, stopSends := context.WithCancel(context.Background())
	e.stopSched, e.stopSends = stopSched, stopSends
	go e.runScheduler(schedCtx)
	e.workersWG.Add(e.Workers)
	for range e.Workers {
		go e.runWorker(sendCtx)
	}
	go e.runFinisher()
	e.opened.Store(true)
	e.log.Info("sender open", "path", e.Path, "policy", e.policy.Name, "retries", len(e.policy.Delays),
		"workers", e.Workers, "callback_timeout", e.CallbackTimeout, "smtp_relay", e.SMTPRelay)
	return nil
}

// Close stops the scheduler, lets attempts in flight finish until ctx is
// done (then cancels them; they are recorded as interrupted and resume at
// the next Open), writes every result and closes the database. It waits for
// every goroutine the engine started.
func (e *Engine) Close(ctx context.Context) error {
	if !e.opened.Load() {
		return nil
	}
	var err error
	e.closeOnce.Do(func() {
		e.stopSched()
		<-e.schedDone
		close(e.jobs)
		workersDone := make(chan struct{})
		go func() { e.workersWG.Wait(); close(workersDone) }()
		select {
		case <-workersDone:
		case <-ctx.Done():
			e.stopSends()
			<-workersDone
			err = fmt.Errorf("close sender: attempts in flight were interrupted: %w", ctx.Err())
		}
		e.stopSends()
		close(e.results)
		<-e.finishDone
		close(e.stopWriter)
		<-e.writerDone
		e.tr.close()
		if cerr := e.closeDBs(); cerr != nil && err == nil {
			err = fmt.Errorf("close sender: %w", cerr)
		}
		e.opened.Store(false)
	})
	return err
}

func (e *Engine) closeDBs() error {
	var errs []error
	if e.stmts != nil {
		e.stmts.close()
		e.rstmts.close()
	}
	if e.rdb != nil {
		errs = append(errs, e.rdb.Close())
	}
	if e.wdb != nil {
		errs = append(errs, e.wdb.Close())
	}
	return errors.Join(errs...)
}

// RetryPolicy returns the retry policy in force (valid after Open).
func (e *Engine) RetryPolicy() Policy { return e.policy }

// Now is the engine clock's current time.
func (e *Engine) Now() time.Time { return e.clock.Now() }

// signal wakes the scheduler without blocking.
func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) publish(evs []Event) {
	if e.Events == nil {
		return
	}
	for _, ev := range evs {
		e.Events.Publish(ev)
	}
}

// runScheduler claims due deliveries for free workers and auto-completes
// due tasks, then sleeps until the next due time, a new delivery or a free
// worker. It never polls.
func (e *Engine) runScheduler(ctx context.Context) {
	defer close(e.schedDone)
	const retryAfterError = time.Second
	for {
		if ctx.Err() != nil {
			return
		}
		e.wakeups.Add(1)
		now := e.clock.Now()
		var failed bool
		free := e.Workers - int(e.inflight.Load())
		if free > 0 {
			jobs, err := e.claim(ctx, now, free)
			if err != nil && ctx.Err() == nil {
				e.log.Error("claim due deliveries", "err", err)
				failed = true
			}
			for _, j := range jobs {
				e.inflight.Add(1)
				e.jobs <- j
			}
			free -= len(jobs)
		}
		if n, err := e.autoCompleteDue(ctx, now); err != nil && ctx.Err() == nil {
			e.log.Error("auto-complete due tasks", "err", err)
			failed = true
		} else if n > 0 {
			continue
		}
		var wait time.Duration = -1
		if failed {
			wait = retryAfterError
		} else {
			next, ok, err := e.nextDue(ctx, free > 0)
			if err != nil && ctx.Err() == nil {
				e.log.Error("find next due time", "err", err)
				wait = retryAfterError
			} else if ok {
				wait = next.Sub(e.clock.Now())
				if wait <= 0 {
					continue
				}
			}
		}
		var timerC <-chan time.Time
		var timer Timer
		if wait >= 0 {
			if failed {
				timer = RealClock{}.NewTimer(wait)
			} else {
				timer = e.clock.NewTimer(wait)
			}
			timerC = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-e.wake:
		case <-timerC:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// nextDue is the earliest pending due time (deliveries only when a worker
// is free) or auto-complete time.
func (e *Engine) nextDue(ctx context.Context, deliveries bool) (time.Time, bool, error) {
	var next sql.NullInt64
	q := `SELECT MIN(auto_complete_at) FROM tasks WHERE status = 'pending' AND auto_complete_at IS NOT NULL`
	if deliveries {
		q = `SELECT MIN(t) FROM (
			SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE state = 'pending'
			UNION ALL
			SELECT MIN(auto_complete_at) FROM tasks WHERE status = 'pending' AND auto_complete_at IS NOT NULL)`
	}
	st, err := e.rstmts.get(ctx, q)
	if err != nil {
		return time.Time{}, false, err
	}
	if err := st.QueryRowContext(ctx).Scan(&next); err != nil {
		return time.Time{}, false, err
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromNS(next.Int64), true, nil
}

// claim marks up to limit due deliveries in flight, counting and recording
// each attempt before it is sent (so a crash mid-attempt counts it).
func (e *Engine) claim(ctx context.Context, now time.Time, limit int) ([]*job, error) {
	var jobs []*job
	var evs []Event
	err := e.write(ctx, func(tx querier) error {
		jobs, evs = nil, nil
		rows, err := tx.QueryContext(ctx, `SELECT id, task_id, event, target, webhook_id, payload, attempts, next_attempt_at
			FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`, ns(now), limit)
		if err != nil {
			return err
		}
		var exhausted []int64
		for rows.Next() {
			j := &job{}
			var attempts int
			var due int64
			if err := rows.Scan(&j.delivery, &j.taskID, &j.event, &j.target, &j.webhookID, &j.payload, &attempts, &due); err != nil {
				rows.Close()
				return err
			}
			if attempts >= e.policy.MaxAttempts() {
				exhausted = append(exhausted, j.delivery)
				continue
			}
			j.n = attempts + 1
			j.dueAt = fromNS(due)
			j.startedAt = now
			jobs = append(jobs, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, j := range jobs {
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'in_flight', attempts = ?, next_attempt_at = NULL,
				updated_at = ? WHERE id = ?`, j.n, ns(now), j.delivery); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO attempts (delivery_id, n, due_at, started_at, url) VALUES (?, ?, ?, ?, ?)`,
				j.delivery, j.n, ns(j.dueAt), ns(now), j.target); err != nil {
				return err
			}
		}
		// A delivery that already had every attempt the policy allows (the
		// policy was shortened between runs) fails without another attempt.
		for _, id := range exhausted {
			ev, err := e.decide(ctx, tx, id, false, now)
			if err != nil {
				return err
			}
			evs = append(evs, ev...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.publish(evs)
	return jobs, nil
}

// decide ends a delivery (succeeded or failed) and, when it is the task's
// latest delivery, sets the task's callback_succeeded.
func (e *Engine) decide(ctx context.Context, tx querier, delivery int64, ok bool, now time.Time) ([]Event, error) {
	state := "failed"
	if ok {
		state = "succeeded"
	}
	var taskID string
	if err := tx.QueryRowContext(ctx, `UPDATE deliveries SET state = ?, next_attempt_at = NULL, updated_at = ?
		WHERE id = ? RETURNING task_id`, state, ns(now), delivery).Scan(&taskID); err != nil {
		return nil, fmt.Errorf("end delivery %d: %w", delivery, err)
	}
	var at any
	if ok {
		at = ns(now)
	}
	var status string
	err := tx.QueryRowContext(ctx, `UPDATE tasks SET callback_succeeded = ?, callback_succeeded_at = ?, updated_at = ?
		WHERE task_id = ? AND NOT EXISTS (SELECT 1 FROM deliveries WHERE task_id = ? AND id > ?)
		RETURNING status`, ok, at, ns(now), taskID, taskID, delivery).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // a newer delivery decides the task's flag
	}
	if err != nil {
		return nil, fmt.Errorf("set callback_succeeded of %s: %w", taskID, err)
	}
	b := ok
	return []Event{{Type: EventTypeTask, TaskID: taskID, TaskStatus: status, CallbackSucceeded: &b, At: now}}, nil
}

func (e *Engine) runWorker(ctx context.Context) {
	defer e.workersWG.Done()
	for j := range e.jobs {
		r := &result{job: j}
		if ctx.Err() != nil {
			r.out = Outcome{Error: "sender shut down before the attempt was sent", Class: ClassInterrupt}
		} else if t, err := parseTarget(j.target); err != nil {
			r.out = Outcome{Error: err.Error(), Class: ClassConfig, Final: true}
		} else {
			p := e.profile.Load()
			r.out = e.tr.send(ctx, t, message{TaskID: j.taskID, Event: j.event, WebhookID: j.webhookID,
				Payload: j.payload, AuthKey: p.CallbackAuthKey, Secret: p.SigningSecret})
		}
		e.results <- r
	}
}

// runFinisher records results in batches (one transaction each), then
// publishes their events and wakes the scheduler.
func (e *Engine) runFinisher() {
	defer close(e.finishDone)
	for r := range e.results {
		batch := []*result{r}
	more:
		for len(batch) < 256 {
			select {
			case r, ok := <-e.results:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		evs, err := e.finish(batch)
		if err != nil {
			// The rows stay in flight; the next Open resumes them.
			e.log.Error("record attempts", "count", len(batch), "err", err)
		}
		e.inflight.Add(-int64(len(batch)))
		e.signal()
		e.publish(evs)
	}
}

func (e *Engine) finish(batch []*result) ([]Event, error) {
	ctx := context.Background()
	var evs []Event
	err := e.write(ctx, func(tx querier) error {
		evs = nil
		var err error
		now := e.clock.Now()
		for _, r := range batch {
			j, o := r.job, r.out
			var status, errMsg, class any
			if o.Status != 0 {
				status = o.Status
			}
			if o.Error != "" {
				errMsg, class = o.Error, o.Class
			}
			if _, err := tx.ExecContext(ctx, `UPDATE attempts SET finished = 1, status = ?, error = ?, error_class = ?,
			latency_ns = ?, reply_headers = ?, reply_body = ? WHERE delivery_id = ? AND n = ?`,
				status, errMsg, class, int64(o.Latency), jsonOrEmpty(o.ReplyHeaders, "[]"), o.ReplyBody, j.delivery, j.n); err != nil {
				return err
			}
			ev := Event{Type: EventTypeAttempt, TaskID: j.taskID, Delivery: j.delivery, Event: j.event, Attempt: j.n,
				URL: j.target, StatusCode: o.Status, Error: o.Error, ErrorClass: o.Class,
				LatencyMS: float64(o.Latency.Microseconds()) / 1000, At: j.startedAt}
			var taskEvs []Event
			switch {
			case o.OK:
				ev.State = "succeeded"
				taskEvs, err = e.decide(ctx, tx, j.delivery, true, now)
			case o.Final || j.n >= e.policy.MaxAttempts():
				ev.State = "failed"
				taskEvs, err = e.decide(ctx, tx, j.delivery, false, now)
			default:
				next := now
				if o.Class != ClassInterrupt {
					d, _ := e.policy.Delay(j.n, rand.Float64())
					next = now.Add(d)
				}
				ev.State = "pending"
				ev.NextAttemptAt = &next
				_, err = tx.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', next_attempt_at = ?, updated_at = ?
				WHERE id = ?`, ns(next), ns(now), j.delivery)
			}
			if err != nil {
				return err
			}
			evs = append(evs, ev)
			evs = append(evs, taskEvs...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return evs, nil
}

// recoverInFlight ends attempts that were in flight when the process
// stopped: each is recorded as interrupted (it counts) and its delivery is
// due again now, or failed if it had no attempt left.
func (e *Engine) recoverInFlight(ctx context.Context) (int, error) {
	tx, err := e.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("recover in-flight deliveries: %w", err)
	}
	defer tx.Rollback()
	now := e.clock.Now()
	rows, err := tx.QueryContext(ctx, `SELECT id, attempts FROM deliveries WHERE state = 'in_flight'`)
	if err != nil {
		return 0, fmt.Errorf("recover in-flight deliveries: %w", err)
	}
	type row struct {
		id       int64
		attempts int
	}
	var list []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.attempts); err != nil {
			rows.Close()
			return 0, fmt.Errorf("recover in-flight deliveries: %w", err)
		}
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("recover in-flight deliveries: %w", err)
	}
	var evs []Event
	for _, r := range list {
		if _, err := tx.ExecContext(ctx, `UPDATE attempts SET finished = 1, error = ?, error_class = ?
			WHERE delivery_id = ? AND finished = 0`, "process stopped during the attempt; its outcome is unknown",
			ClassInterrupt, r.id); err != nil {
			return 0, fmt.Errorf("recover delivery %d: %w", r.id, err)
		}
		if r.attempts >= e.policy.MaxAttempts() {
			ev, err := e.decide(ctx, tx, r.id, false, now)
			if err != nil {
				return 0, err
			}
			evs = append(evs, ev...)
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', next_attempt_at = ?, updated_at = ?
			WHERE id = ?`, ns(now), ns(now), r.id); err != nil {
			return 0, fmt.Errorf("recover delivery %d: %w", r.id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("recover in-flight deliveries: %w", err)
	}
	e.publish(evs)
	return len(list), nil
}
