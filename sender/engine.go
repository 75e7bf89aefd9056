package sender

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// Workers bounds the attempts under way at once; 0: 128. A receiver
	// that never answers holds a worker for the whole callback timeout, so
	// the pool is wide enough that a few such receivers do not hold up the
	// others.
	Workers int
	Events  Publisher    // may be nil; gets events after commit
	Logger  *slog.Logger // nil: slog.Default()

	log     *slog.Logger
	clock   Clock
	policy  Policy
	wdb     *sql.DB    // the write pool: one connection, held by wc
	wc      *writeConn // the write connection
	ckpt    *checkpointer
	rdb     *sql.DB    // read pool
	rstmts  *stmtCache // read pool
	tr      *transport
	profile atomic.Pointer[Profile]
	ids     *taskIDs
	fresh   freshTasks // tasks as created, for CompleteTask

	wake       chan struct{}
	ops        chan *writeOp
	stopWriter chan struct{}
	writerDone chan struct{}
	jobs       chan *job
	inflight   atomic.Int64 // worker slots taken (claimed or dispatched attempts not yet recorded)
	backlog    atomic.Bool  // due deliveries may be waiting for a free worker
	wakeups    atomic.Int64 // scheduler loop turns, for tests of idleness
	commits    atomic.Int64 // write transactions committed, for benchmarks

	dispatchMu     sync.RWMutex // guards sends on jobs against Close
	dispatchClosed bool

	stopSched context.CancelFunc
	stopSends context.CancelFunc
	schedDone chan struct{}
	workersWG sync.WaitGroup
	opened    atomic.Bool
	closeOnce sync.Once
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
	tg        Target // parsed target, when known
}

// parsedTarget is the job's target, parsed when it was queued or now.
func (j *job) parsedTarget() (Target, error) {
	if j.tg.URL != "" || j.tg.Email != "" {
		return j.tg, nil
	}
	return parseTarget(j.target)
}

type result struct {
	job   *job
	out   Outcome
	ended time.Time // on the engine's clock: the retry's delay counts from here
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
		e.Workers = 128
	}
	if e.Workers < 0 || e.Workers > 4096 {
		return fmt.Errorf("open sender: %w: Workers %d not in 1..4096", ErrInvalid, e.Workers)
	}
	if e.SMTPRelay != "" {
		if err := CheckRelay(e.SMTPRelay); err != nil {
			return fmt.Errorf("open sender: %w", err)
		}
	}
	ctx := context.Background()
	wdb, rdb, err := openDB(ctx, e.Path)
	if err != nil {
		return fmt.Errorf("open sender: %w", err)
	}
	e.wdb, e.rdb = wdb, rdb
	e.rstmts = newStmtCache(rdb)
	if e.ckpt, err = openCheckpointer(ctx, e.Path, e.log); err != nil {
		e.closeDBs()
		return fmt.Errorf("open sender: %w", err)
	}
	if e.wc, err = openWriteConn(ctx, wdb); err != nil {
		e.closeDBs()
		return fmt.Errorf("open sender: %w", err)
	}
	if err := e.loadProfile(ctx); err != nil {
		e.closeDBs()
		return fmt.Errorf("open sender: %w", err)
	}
	if r, ok := e.clock.(resumer); ok {
		var last sql.NullInt64
		err := e.wc.conn.QueryRowContext(ctx, `SELECT MAX(t) FROM (
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
	e.ids = newTaskIDs()
	e.fresh = freshTasks{}
	e.tr = newTransport(e.CallbackTimeout, e.SMTPRelay, e.Workers)
	e.wake = make(chan struct{}, 1)
	e.ops = make(chan *writeOp, opQueue)
	e.stopWriter = make(chan struct{})
	e.writerDone = make(chan struct{})
	go e.runWriter()
	e.jobs = make(chan *job, e.Workers)
	e.dispatchClosed = false
	e.inflight.Store(0)
	e.backlog.Store(false)
	e.schedDone = make(chan struct{})
	schedCtx, stopSched := context.WithCancel(context.Background())
	sendCtx, stopSends := context.WithCancel(context.Background())
	e.stopSched, e.stopSends = stopSched, stopSends
	go e.runScheduler(schedCtx)
	e.workersWG.Add(e.Workers)
	for range e.Workers {
		go e.runWorker(sendCtx)
	}
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
		e.dispatchMu.Lock()
		e.dispatchClosed = true
		close(e.jobs)
		e.dispatchMu.Unlock()
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
	if e.rstmts != nil {
		e.rstmts.close()
	}
	if e.wc != nil {
		errs = append(errs, e.wc.close())
		e.wc = nil
	}
	if e.ckpt != nil {
		errs = append(errs, e.ckpt.close())
		e.ckpt = nil
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

// reserve takes up to n free worker slots and returns how many it took.
// Every slot taken is given back by release, or by record once the
// attempt it was taken for is recorded.
func (e *Engine) reserve(n int) int {
	for {
		cur := e.inflight.Load()
		free := int64(e.Workers) - cur
		if free <= 0 || n <= 0 {
			return 0
		}
		take := min(int64(n), free)
		if e.inflight.CompareAndSwap(cur, cur+take) {
			return int(take)
		}
	}
}

// release gives back n worker slots that carry no attempt.
func (e *Engine) release(n int) {
	if n > 0 {
		e.inflight.Add(-int64(n))
		if e.backlog.Load() {
			e.signal()
		}
	}
}

// reserveDirect takes a worker slot for a delivery queued right now, so
// that its first attempt is recorded in the same transaction and sent at
// once, without a trip through the scheduler. It refuses while due
// deliveries may be waiting for a worker, so those go first.
func (e *Engine) reserveDirect() bool {
	return !e.backlog.Load() && e.reserve(1) == 1
}

// dispatch hands a claimed attempt (its worker slot taken, its start
// committed) to the workers. After Close has begun the attempt is left in
// flight in the database: the next Open records it as interrupted and
// resumes the delivery.
func (e *Engine) dispatch(j *job) {
	e.dispatchMu.RLock()
	defer e.dispatchMu.RUnlock()
	if e.dispatchClosed {
		e.inflight.Add(-1)
		return
	}
	e.jobs <- j // never blocks: at most Workers slots are taken, and jobs holds Workers
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
		failed := false
		var next time.Time // earliest future due time; zero: none
		nextDelivery, nextAuto, err := e.nextDue(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error("find next due time", "err", err)
			}
			failed = true
		}
		if !failed && !nextDelivery.IsZero() {
			if nextDelivery.After(now) {
				e.backlog.Store(false)
				next = nextDelivery
			} else if n := e.reserve(e.Workers); n == 0 {
				// Every worker is busy: record wakes us when one frees.
				e.backlog.Store(true)
			} else {
				jobs, touched, err := e.claim(ctx, now, n)
				e.release(n - len(jobs))
				for _, j := range jobs {
					e.dispatch(j)
				}
				switch {
				case err != nil:
					if ctx.Err() == nil {
						e.log.Error("claim due deliveries", "err", err)
					}
					failed = true
				case touched == n:
					e.backlog.Store(true) // maybe more are due
					continue
				case touched > 0:
					e.backlog.Store(false)
					continue // find the next due time
				default:
					// The read said due, the claim found nothing: should not
					// happen; look again after a pause rather than spin.
					failed = true
				}
			}
		} else if !failed {
			e.backlog.Store(false)
		}
		if !failed && !nextAuto.IsZero() {
			if !nextAuto.After(now) {
				if n, err := e.autoCompleteDue(ctx, now); err != nil {
					if ctx.Err() == nil {
						e.log.Error("auto-complete due tasks", "err", err)
					}
					failed = true
				} else if n > 0 {
					continue
				}
			} else if next.IsZero() || nextAuto.Before(next) {
				next = nextAuto
			}
		}
		var timer Timer
		var timerC <-chan time.Time
		switch {
		case failed:
			timer = RealClock{}.NewTimer(retryAfterError)
		case !next.IsZero():
			wait := next.Sub(e.clock.Now())
			if wait <= 0 {
				continue
			}
			timer = e.clock.NewTimer(wait)
			// A clock that jumped between the two readings (a resumed
			// scaled clock, a test's clock) armed the timer late: look
			// again rather than sleep past the due time.
			if !next.After(e.clock.Now()) {
				timer.Stop()
				continue
			}
		}
		if timer != nil {
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

// nextDue is the earliest due time of a pending delivery and of a pending
// task's auto-completion (zero when there is none).
func (e *Engine) nextDue(ctx context.Context) (delivery, auto time.Time, err error) {
	st, err := e.rstmts.get(ctx, `SELECT
		(SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'),
		(SELECT MIN(auto_complete_at) FROM tasks WHERE status = 'pending' AND auto_complete_at IS NOT NULL)`)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	var d, a sql.NullInt64
	if err := st.QueryRowContext(ctx).Scan(&d, &a); err != nil {
		return time.Time{}, time.Time{}, err
	}
	if d.Valid {
		delivery = fromNS(d.Int64)
	}
	if a.Valid {
		auto = fromNS(a.Int64)
	}
	return delivery, auto, nil
}

// claim marks up to limit due deliveries in flight, counting each attempt
// and recording its start on the delivery row before it is sent (so a
// crash mid-attempt counts it). touched is how many due rows it found.
func (e *Engine) claim(ctx context.Context, now time.Time, limit int) (jobs []*job, touched int, err error) {
	var evs []Event
	err = e.write(func(tx querier) error {
		jobs, evs, touched = nil, nil, 0
		rows, err := tx.QueryContext(ctx, `SELECT id, task_id, event, target, webhook_id, payload, attempts, next_attempt_at
			FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`, ns(now), limit)
		if err != nil {
			return err
		}
		type spent struct {
			id     int64
			taskID string
		}
		var exhausted []spent
		for rows.Next() {
			j := &job{}
			var attempts int
			var due int64
			if err := rows.Scan(&j.delivery, &j.taskID, &j.event, &j.target, &j.webhookID, &j.payload, &attempts, &due); err != nil {
				rows.Close()
				return err
			}
			touched++
			if attempts >= e.policy.MaxAttempts() {
				exhausted = append(exhausted, spent{j.delivery, j.taskID})
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
				attempt_due_at = ?, attempt_started_at = ?, updated_at = ? WHERE id = ?`,
				j.n, ns(j.dueAt), ns(now), ns(now), j.delivery); err != nil {
				return err
			}
		}
		// A delivery that already had every attempt the policy allows (the
		// policy was shortened between runs) fails without another attempt.
		for _, d := range exhausted {
			ev, err := e.decide(ctx, tx, d.id, d.taskID, false, now)
			if err != nil {
				return err
			}
			evs = append(evs, ev...)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	e.publish(evs)
	return jobs, touched, nil
}

// decide ends a delivery of taskID (succeeded or failed). When it is the
// task's latest delivery, that decides the task's callback_succeeded (read
// from the delivery, see task_view), and the task event says so.
func (e *Engine) decide(ctx context.Context, tx querier, delivery int64, taskID string, ok bool, now time.Time) ([]Event, error) {
	q := `UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, attempt_due_at = NULL,
		attempt_started_at = NULL, updated_at = ? WHERE id = ?`
	if ok {
		q = `UPDATE deliveries SET state = 'succeeded', next_attempt_at = NULL, attempt_due_at = NULL,
		attempt_started_at = NULL, updated_at = ? WHERE id = ?`
	}
	if _, err := tx.ExecContext(ctx, q, ns(now), delivery); err != nil {
		return nil, fmt.Errorf("end delivery %d: %w", delivery, err)
	}
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM tasks WHERE task_id = ?
		AND NOT EXISTS (SELECT 1 FROM deliveries WHERE task_id = ? AND id > ?)`, taskID, taskID, delivery).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // a newer delivery decides the task's flag
	}
	if err != nil {
		return nil, fmt.Errorf("read task %s: %w", taskID, err)
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
		} else if t, err := j.parsedTarget(); err != nil {
			r.out = Outcome{Error: err.Error(), Class: ClassConfig, Final: true}
		} else {
			p := e.profile.Load()
			r.out = e.tr.send(ctx, t, message{TaskID: j.taskID, Event: j.event, WebhookID: j.webhookID,
				Payload: j.payload, AuthKey: p.CallbackAuthKey, Secret: p.SigningSecret})
		}
		r.ended = e.clock.Now()
		e.record(r)
	}
}

// record records the result of an attempt (in the writer's next
// transaction, shared with whatever else is being written), then frees its
// worker slot, publishes its events and, when a retry was scheduled or due
// deliveries wait for a worker, wakes the scheduler. The worker that made
// the attempt calls it: no hand-off to another goroutine on the way.
func (e *Engine) record(r *result) {
	evs, retries, err := e.finish([]*result{r})
	if err != nil {
		// The row stays in flight; the next Open resumes it.
		e.log.Error("record attempt", "delivery", r.job.delivery, "err", err)
	}
	e.inflight.Add(-1)
	if retries || e.backlog.Load() {
		e.signal()
	}
	e.publish(evs)
}

// finish records the outcome of each attempt in batch in one transaction:
// the attempt row, and the delivery's next state (succeeded, failed, or
// pending with its retry time) with the task's callback_succeeded.
func (e *Engine) finish(batch []*result) (evs []Event, retries bool, err error) {
	ctx := context.Background()
	err = e.write(func(tx querier) error {
		evs, retries = make([]Event, 0, 2*len(batch)), false
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
			if _, err := tx.ExecContext(ctx, `INSERT INTO attempts (delivery_id, n, due_at, started_at, url, finished,
				status, error, error_class, latency_ns, reply_headers, reply_body) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`,
				j.delivery, j.n, ns(j.dueAt), ns(j.startedAt), j.target, status, errMsg, class, int64(o.Latency),
				jsonList(o.ReplyHeaders), o.ReplyBody); err != nil {
				return err
			}
			ev := Event{Type: EventTypeAttempt, TaskID: j.taskID, Delivery: j.delivery, Event: j.event, Attempt: j.n,
				URL: j.target, StatusCode: o.Status, Error: o.Error, ErrorClass: o.Class,
				LatencyMS: float64(o.Latency.Microseconds()) / 1000, At: j.startedAt}
			var taskEvs []Event
			switch {
			case o.OK:
				ev.State = "succeeded"
				taskEvs, err = e.decide(ctx, tx, j.delivery, j.taskID, true, now)
			case o.Final || j.n >= e.policy.MaxAttempts():
				ev.State = "failed"
				taskEvs, err = e.decide(ctx, tx, j.delivery, j.taskID, false, now)
			default:
				// Due the policy's delay after the attempt ended, not after
				// this commit: on a fast clock the time between the two
				// would show as seconds.
				next := now
				if o.Class != ClassInterrupt {
					d, _ := e.policy.Delay(j.n, rand.Float64())
					if base := r.ended; !base.IsZero() && base.Before(now) {
						next = base.Add(d)
					} else {
						next = now.Add(d)
					}
				}
				ev.State = "pending"
				ev.NextAttemptAt = &next
				retries = true
				_, err = tx.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', next_attempt_at = ?,
					attempt_due_at = NULL, attempt_started_at = NULL, updated_at = ? WHERE id = ?`, ns(next), ns(now), j.delivery)
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
		return nil, false, err
	}
	return evs, retries, nil
}

// recoverInFlight ends attempts that were in flight when the process
// stopped: each is recorded as interrupted (it counts) and its delivery is
// due again now, or failed if it had no attempt left. It runs in Open,
// before the writer starts.
func (e *Engine) recoverInFlight(ctx context.Context) (int, error) {
	var (
		evs []Event
		n   int
	)
	err := e.wc.run(ctx, func(tx querier) error {
		now := e.clock.Now()
		rows, err := tx.QueryContext(ctx, `SELECT id, task_id, target, attempts, attempt_due_at, attempt_started_at
			FROM deliveries WHERE state = 'in_flight'`)
		if err != nil {
			return err
		}
		type row struct {
			id             int64
			taskID, target string
			attempts       int
			due, started   sql.NullInt64
		}
		var list []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.taskID, &r.target, &r.attempts, &r.due, &r.started); err != nil {
				rows.Close()
				return err
			}
			list = append(list, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		n = len(list)
		for _, r := range list {
			// The attempt's start is on the delivery row; a database written
			// before that has an unfinished attempts row instead.
			due, started := ns(now), ns(now)
			if r.due.Valid {
				due = r.due.Int64
			}
			if r.started.Valid {
				started = r.started.Int64
			}
			if r.attempts > 0 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO attempts (delivery_id, n, due_at, started_at, url, finished, error, error_class)
					VALUES (?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (delivery_id, n) DO UPDATE SET finished = 1,
					error = excluded.error, error_class = excluded.error_class WHERE finished = 0`,
					r.id, r.attempts, due, started, r.target, "process stopped during the attempt; its outcome is unknown",
					ClassInterrupt); err != nil {
					return fmt.Errorf("delivery %d: %w", r.id, err)
				}
			}
			if r.attempts >= e.policy.MaxAttempts() {
				ev, err := e.decide(ctx, tx, r.id, r.taskID, false, now)
				if err != nil {
					return err
				}
				evs = append(evs, ev...)
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', next_attempt_at = ?, attempt_due_at = NULL,
				attempt_started_at = NULL, updated_at = ? WHERE id = ?`, ns(now), ns(now), r.id); err != nil {
				return fmt.Errorf("delivery %d: %w", r.id, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recover in-flight deliveries: %w", err)
	}
	e.publish(evs)
	return n, nil
}
