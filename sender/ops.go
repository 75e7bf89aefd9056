package sender

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Profile is the account-wide callback settings.
type Profile struct {
	DefaultCallbackURL string `json:"default_callback_url"`
	CallbackAuthKey    string `json:"callback_auth_key"`
	SigningSecret      string `json:"signing_secret"`
}

// ProfileUpdate changes the fields that are set (nil: unchanged; "": clear).
// SigningSecret "generate" makes a fresh whsec_ secret.
type ProfileUpdate struct {
	DefaultCallbackURL *string `json:"default_callback_url"`
	CallbackAuthKey    *string `json:"callback_auth_key"`
	SigningSecret      *string `json:"signing_secret"`
}

func (e *Engine) loadProfile(ctx context.Context) error {
	var p Profile
	err := e.wc.run(ctx, func(tx querier) error {
		// The first Open gives the profile a random callback auth key, as a
		// hosted account would have.
		if _, err := tx.ExecContext(ctx, `INSERT INTO profile (id, callback_auth_key) VALUES (1, ?)
			ON CONFLICT (id) DO NOTHING`, "live_"+newID(16)); err != nil {
			return fmt.Errorf("create profile: %w", err)
		}
		return tx.QueryRowContext(ctx, `SELECT default_callback_url, callback_auth_key, signing_secret
			FROM profile WHERE id = 1`).Scan(&p.DefaultCallbackURL, &p.CallbackAuthKey, &p.SigningSecret)
	})
	if err != nil {
		return fmt.Errorf("load profile: %w", err)
	}
	e.profile.Store(&p)
	return nil
}

// Profile returns the current profile.
func (e *Engine) Profile() Profile { return *e.profile.Load() }

// SetProfile applies u and returns the new profile.
func (e *Engine) SetProfile(ctx context.Context, u ProfileUpdate) (Profile, error) {
	p := e.Profile()
	if u.DefaultCallbackURL != nil {
		s := strings.TrimSpace(*u.DefaultCallbackURL)
		if s != "" {
			if _, err := parseTarget(s); err != nil {
				return p, &FieldError{Field: "default_callback_url", Msg: err.Error()}
			}
		}
		p.DefaultCallbackURL = s
	}
	if u.CallbackAuthKey != nil {
		// It goes into an HTTP header and an e-mail header as it is.
		if k := *u.CallbackAuthKey; len(k) > 256 || !printableASCII(k) {
			return p, fieldErr("callback_auth_key", "must be at most 256 printable ASCII characters (no control characters)")
		}
		p.CallbackAuthKey = *u.CallbackAuthKey
	}
	if u.SigningSecret != nil {
		s := strings.TrimSpace(*u.SigningSecret)
		switch s {
		case "":
		case "generate":
			s = NewSigningSecret()
		default:
			if _, err := decodeSecret(s); err != nil {
				return p, err
			}
		}
		p.SigningSecret = s
	}
	if !e.opened.Load() {
		return p, ErrNotOpen
	}
	err := e.write(func(tx querier) error {
		_, err := tx.ExecContext(ctx, `UPDATE profile SET default_callback_url = ?, callback_auth_key = ?,
			signing_secret = ? WHERE id = 1`, p.DefaultCallbackURL, p.CallbackAuthKey, p.SigningSecret)
		return err
	})
	if err != nil {
		return e.Profile(), fmt.Errorf("save profile: %w", err)
	}
	e.profile.Store(&p)
	return p, nil
}

// CreateError is returned by CreateTask when the request was refused after
// an error task was recorded (and its error callback queued).
type CreateError struct {
	Err  error
	Task *Task // the task in status error, nil if none was recorded
}

func (e *CreateError) Error() string { return e.Err.Error() }
func (e *CreateError) Unwrap() error { return e.Err }

// CreateTask creates a task of type typ from a JSON request body. A bad
// callback_url, a bad body or a reused unique_id is an error and nothing is
// stored. An unknown type or bad params is a *CreateError: when a callback
// target exists, a task in status error is stored and an error callback
// (response.error) is queued.
func (e *Engine) CreateTask(ctx context.Context, typ string, body []byte) (*Task, error) {
	if !e.opened.Load() {
		return nil, ErrNotOpen
	}
	in, targetErr, err := parseCreate(typ, body)
	if targetErr != nil {
		return nil, targetErr
	}
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Field == "body" {
			return nil, err
		}
		t, cbErr := e.createErrorTask(ctx, in, err)
		if cbErr != nil {
			return nil, errors.Join(err, cbErr)
		}
		return nil, &CreateError{Err: err, Task: t}
	}
	now := e.clock.Now().UTC()
	t := &Task{
		TaskID: e.ids.next(time.Now()), Type: in.Type, Instruction: in.Instruction, Params: in.Params,
		Status: StatusPending, CreatedAt: now, UpdatedAt: now, Response: json.RawMessage("null"),
		Metadata: in.Metadata, IsTest: in.IsTest,
	}
	if in.CallbackURL != "" {
		t.CallbackURL = &in.CallbackURL
	}
	if in.UniqueID != "" {
		t.UniqueID = &in.UniqueID
	}
	var auto *time.Time
	if e.AutoComplete > 0 {
		at := now.Add(e.AutoComplete)
		auto = &at
	}
	if err := e.write(func(tx querier) error {
		return insertTask(ctx, tx, t, in.UniqueID, auto)
	}); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return nil, err // said to the client as it is
		}
		return nil, fmt.Errorf("create task: %w", err)
	}
	if auto != nil {
		e.signal()
	}
	e.fresh.put(t)
	e.publish([]Event{{Type: EventTypeTask, TaskID: t.TaskID, TaskStatus: t.Status, At: now}})
	return t, nil
}

// createErrorTask records a task in status error for a refused creation and
// queues its error callback, when there is somewhere to send it.
func (e *Engine) createErrorTask(ctx context.Context, in createInput, cause error) (*Task, error) {
	if in.CallbackURL == "" && e.Profile().DefaultCallbackURL == "" {
		return nil, nil
	}
	now := e.clock.Now().UTC()
	resp, _ := json.Marshal(map[string]string{"error": cause.Error()})
	t := &Task{
		TaskID: e.ids.next(time.Now()), Type: in.Type, Instruction: in.Instruction, Params: in.Params,
		Status: StatusError, CreatedAt: now, UpdatedAt: now, Response: resp,
		Metadata: in.Metadata, IsTest: in.IsTest,
	}
	if !utf8.ValidString(t.Type) || len(t.Type) > 64 {
		t.Type = truncate(strings.ToValidUTF8(t.Type, "?"), 64)
	}
	if len(t.Params) == 0 {
		t.Params = json.RawMessage("{}")
	}
	if len(t.Metadata) == 0 {
		t.Metadata = json.RawMessage("{}")
	}
	if in.CallbackURL != "" {
		t.CallbackURL = &in.CallbackURL
	}
	if in.UniqueID != "" {
		t.UniqueID = &in.UniqueID
	}
	var (
		j      *job
		queued int64
		slot   bool
	)
	err := e.write(func(tx querier) error {
		j, queued = nil, 0
		if err := insertTask(ctx, tx, t, "", nil); err != nil {
			return err
		}
		if !slot {
			slot = e.reserveDirect()
		}
		var err error
		queued, j, err = e.enqueue(ctx, tx, t, EventError, now, slot)
		return err
	})
	e.handOff(t, now, j, slot, queued, err)
	if err != nil {
		return nil, fmt.Errorf("record error task: %w", err)
	}
	return t, nil
}

// enqueue queues a callback of event for t (as it is now) to its callback
// URL or the profile default; it returns 0 when there is no target. The
// task's callback_succeeded goes back to undecided: the caller saves t
// after enqueue, in the same transaction. With direct (a worker slot taken
// by reserveDirect), the delivery's first attempt is counted and its start
// recorded in this transaction, and the returned job is to be handed to
// the workers (handOff) once it has committed.
func (e *Engine) enqueue(ctx context.Context, tx querier, t *Task, event string, now time.Time, direct bool) (int64, *job, error) {
	j, err := newJob(t, event, now, e.profile.Load())
	if err != nil || j == nil {
		return 0, nil, err
	}
	if err := insertDelivery(ctx, tx, j, now, direct); err != nil {
		return 0, nil, err
	}
	if !direct {
		return j.delivery, nil, nil
	}
	return j.delivery, j, nil
}

// newJob builds the delivery of event for t (its target, payload and
// webhook id) without touching the database; nil when t has no target.
// t's callback_succeeded is reset to undecided, as the payload shows it.
func newJob(t *Task, event string, now time.Time, p *Profile) (*job, error) {
	target := p.DefaultCallbackURL
	if t.CallbackURL != nil && *t.CallbackURL != "" {
		target = *t.CallbackURL
	}
	if target == "" {
		return nil, nil
	}
	tg, err := parseTarget(target)
	if err != nil {
		return nil, fmt.Errorf("callback target of task %s: %w", t.TaskID, err)
	}
	t.CallbackSucceeded, t.CallbackSucceededAt = nil, nil
	payload, err := payloadFor(t)
	if err != nil {
		return nil, err
	}
	return &job{taskID: t.TaskID, event: event, target: tg.String(), webhookID: "msg_" + newID(12), payload: payload,
		dueAt: now, startedAt: now, tg: tg}, nil
}

// insertDelivery stores j as a new delivery and sets j.delivery. With
// direct, its first attempt is counted and its start recorded (j.n = 1).
func insertDelivery(ctx context.Context, tx querier, j *job, now time.Time, direct bool) error {
	// One time value bound four times (?1): the same instant, fewer
	// arguments to convert. The id is the new row's rowid (deliveries.id is
	// its INTEGER PRIMARY KEY), read without a RETURNING result row.
	var (
		res sql.Result
		err error
	)
	if direct {
		j.n = 1
		res, err = tx.ExecContext(ctx, `INSERT INTO deliveries (task_id, event, target, webhook_id, payload, state,
			attempts, next_attempt_at, attempt_due_at, attempt_started_at, created_at, updated_at)
			VALUES (?2, ?3, ?4, ?5, ?6, 'in_flight', 1, NULL, ?1, ?1, ?1, ?1)`,
			ns(now), j.taskID, j.event, j.target, j.webhookID, j.payload)
	} else {
		j.n = 0
		res, err = tx.ExecContext(ctx, `INSERT INTO deliveries (task_id, event, target, webhook_id, payload, state,
			attempts, next_attempt_at, created_at, updated_at) VALUES (?2, ?3, ?4, ?5, ?6, 'pending', 0, ?1, ?1, ?1)`,
			ns(now), j.taskID, j.event, j.target, j.webhookID, j.payload)
	}
	if err == nil {
		j.delivery, err = res.LastInsertId()
	}
	if err != nil {
		return fmt.Errorf("queue callback: %w", err)
	}
	return nil
}

// handOff follows a write of task t at now that may have queued a delivery
// (queued is its id, 0 if none; err the write's result): once committed,
// the task's event is published, before its attempt goes to the workers
// so that the attempt's events never come first; an unused worker slot is
// given back; a delivery queued without a slot wakes the scheduler.
func (e *Engine) handOff(t *Task, now time.Time, j *job, slot bool, queued int64, err error) {
	if err == nil {
		e.publish([]Event{{Type: EventTypeTask, TaskID: t.TaskID, TaskStatus: t.Status, CallbackSucceeded: t.CallbackSucceeded, At: now}})
	}
	if err == nil && j != nil {
		e.dispatch(j)
		return
	}
	if slot {
		e.release(1)
	}
	if err == nil && queued != 0 {
		e.signal()
	}
}

// mutate runs change on task id in one write transaction; when change
// returns an event, the callback is queued with the changed task.
func (e *Engine) mutate(ctx context.Context, id string, change func(t *Task, now time.Time) (event string, err error)) (*Task, error) {
	if !e.opened.Load() {
		return nil, ErrNotOpen
	}
	var (
		t      *Task
		now    time.Time
		event  string
		queued int64
		j      *job
		slot   bool
	)
	err := e.write(func(tx querier) error {
		t, event, queued, j = nil, "", 0, nil
		row, err := getTask(ctx, tx, id)
		if err != nil {
			return err
		}
		t = &row.Task
		now = e.clock.Now().UTC()
		if event, err = change(t, now); err != nil {
			return err
		}
		t.UpdatedAt = now
		if event != "" {
			if !slot {
				slot = e.reserveDirect()
			}
			if queued, j, err = e.enqueue(ctx, tx, t, event, now, slot); err != nil {
				return err
			}
		}
		if err := updateTaskState(ctx, tx, t); err != nil {
			return err
		}
		if event == EventRecall {
			var auto any
			if e.AutoComplete > 0 {
				auto = ns(now.Add(e.AutoComplete))
			}
			if _, err := tx.ExecContext(ctx, "UPDATE tasks SET auto_complete_at = ? WHERE task_id = ?", auto, t.TaskID); err != nil {
				return fmt.Errorf("update task: %w", err)
			}
		}
		return nil
	})
	e.handOff(t, now, j, slot, queued, err)
	if err != nil {
		return nil, err
	}
	if event == EventRecall {
		e.signal() // its auto-completion time
	}
	return t, nil
}

// CompleteTask completes a pending task with response (a JSON object) and
// queues the completion callback. A task this engine created recently and
// that is still as created is completed from the copy kept in e.fresh: its
// payload is built before the write, which only checks that the row is
// unchanged (see freshTasks). Otherwise the state check and the change are one
// UPDATE that returns the completed task, from which the payload is built
// (the RETURNING row is the tasks row: its callback_succeeded is reset by
// enqueue, or read from task_view when no callback is queued).
func (e *Engine) CompleteTask(ctx context.Context, id string, response json.RawMessage) (*Task, error) {
	if len(response) == 0 || isNull(response) {
		return nil, fieldErr("response", "required (a JSON object)")
	}
	if !isObject(response) || !json.Valid(response) {
		return nil, fieldErr("response", "must be a JSON object")
	}
	if !e.opened.Load() {
		return nil, ErrNotOpen
	}
	resp := string(compact(response))
	var pre *completion
	if ft := e.fresh.take(id); ft != nil {
		pre = e.prepareCompletion(ft, resp)
	}
	var (
		t      *Task
		now    time.Time
		queued int64
		j      *job
		slot   bool
	)
	err := e.write(func(tx querier) error {
		t, queued, j = nil, 0, nil
		if pre != nil {
			done, err := pre.apply(ctx, tx, e.profile.Load())
			if err != nil {
				return fmt.Errorf("complete task %s: %w", id, err)
			}
			if done {
				t, now = pre.task, pre.now
				if !slot {
					slot = e.reserveDirect()
				}
				jj := *pre.job // this fn may run again: start from the prepared job each time
				if err := insertDelivery(ctx, tx, &jj, now, slot); err != nil {
					return err
				}
				if queued = jj.delivery; slot {
					j = &jj
				}
				return nil
			}
		}
		now = e.clock.Now().UTC()
		row, err := scanTask(tx.QueryRowContext(ctx, `UPDATE tasks SET status = 'completed', response = ?,
			completed_at = ?, updated_at = ? WHERE task_id = ? AND status = 'pending' RETURNING `+taskColumns,
			resp, ns(now), ns(now), id))
		if errors.Is(err, sql.ErrNoRows) {
			cur, err := getTask(ctx, tx, id)
			if err != nil {
				return err
			}
			return fmt.Errorf("complete task %s in status %s: %w", cur.TaskID, cur.Status, ErrState)
		}
		if err != nil {
			return fmt.Errorf("complete task %s: %w", id, err)
		}
		t = &row.Task
		if !slot {
			slot = e.reserveDirect()
		}
		// A callback is queued when the task or the profile has a target;
		// its new delivery makes callback_succeeded undecided again.
		if queued, j, err = e.enqueue(ctx, tx, t, EventCompleted, now, slot); err != nil || queued != 0 {
			return err
		}
		// No callback: callback_succeeded stays its latest delivery's.
		if row, err = getTask(ctx, tx, id); err != nil {
			return err
		}
		t = &row.Task
		return nil
	})
	e.handOff(t, now, j, slot, queued, err)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Audit is an audit of a completed task: Accepted (with optional Comments)
// as the hosted API takes it, or the sandbox's Fixed response.
type Audit struct {
	Accepted *bool           `json:"accepted"`
	Comments *string         `json:"comments"`
	Fixed    json.RawMessage `json:"fixed"` // {"response": {...}}
}

// AuditTask applies a to a completed task and queues the audit callback.
func (e *Engine) AuditTask(ctx context.Context, id string, a Audit) (*Task, error) {
	var fixed json.RawMessage
	switch {
	case len(a.Fixed) > 0 && !isNull(a.Fixed):
		if a.Accepted != nil {
			return nil, fieldErr("fixed", "give either accepted or fixed, not both")
		}
		var f struct {
			Response json.RawMessage `json:"response"`
		}
		if !isObject(a.Fixed) || json.Unmarshal(a.Fixed, &f) != nil {
			return nil, fieldErr("fixed", "must be an object {\"response\": {...}}")
		}
		if len(f.Response) == 0 || !isObject(f.Response) {
			return nil, fieldErr("fixed.response", "required (a JSON object)")
		}
		fixed = compact(f.Response)
	case a.Accepted == nil:
		return nil, fieldErr("accepted", "required (true or false), or give fixed: {response}")
	}
	if a.Comments != nil && len(*a.Comments) > 10000 {
		return nil, fieldErr("comments", "longer than 10000 characters")
	}
	return e.mutate(ctx, id, func(t *Task, now time.Time) (string, error) {
		if t.Status != StatusCompleted {
			return "", fmt.Errorf("audit task %s in status %s: %w", t.TaskID, t.Status, ErrState)
		}
		review := ReviewRejected
		switch {
		case fixed != nil:
			review = ReviewFixed
			t.PriorResponses = append(t.PriorResponses, t.Response)
			t.Response = fixed
		case *a.Accepted:
			review = ReviewAccepted
		}
		t.CustomerReviewStatus = &review
		if a.Comments != nil && *a.Comments != "" {
			t.CustomerReviewComments = append(t.CustomerReviewComments, *a.Comments)
		}
		return EventAudit, nil
	})
}

// RecallTask turns a completed task back to pending (its response moves to
// prior_responses) and queues the recall callback.
func (e *Engine) RecallTask(ctx context.Context, id string) (*Task, error) {
	return e.mutate(ctx, id, func(t *Task, now time.Time) (string, error) {
		if t.Status != StatusCompleted {
			return "", fmt.Errorf("recall task %s in status %s: %w", t.TaskID, t.Status, ErrState)
		}
		t.Status = StatusPending
		if len(t.Response) > 0 && !isNull(t.Response) {
			t.PriorResponses = append(t.PriorResponses, t.Response)
		}
		t.Response = json.RawMessage("null")
		t.CompletedAt = nil
		return EventRecall, nil
	})
}

// CancelTask cancels a pending task (no callback, as the hosted API).
func (e *Engine) CancelTask(ctx context.Context, id string) (*Task, error) {
	return e.mutate(ctx, id, func(t *Task, now time.Time) (string, error) {
		if t.Status != StatusPending {
			return "", fmt.Errorf("cancel task %s in status %s: %w", t.TaskID, t.Status, ErrState)
		}
		t.Status = StatusCanceled
		return "", nil
	})
}

// GetTask reads one task.
func (e *Engine) GetTask(ctx context.Context, id string) (*Task, error) {
	t, err := getTask(ctx, e.rdb, id)
	if err != nil {
		return nil, err
	}
	return &t.Task, nil
}

// ListTasks returns one page of tasks matching f, newest first.
func (e *Engine) ListTasks(ctx context.Context, f TaskFilter) (*TaskPage, error) {
	return listTasks(ctx, e.rdb, f)
}

// autoCompleteDue completes pending tasks whose auto-complete time has come.
func (e *Engine) autoCompleteDue(ctx context.Context, now time.Time) (int, error) {
	if e.AutoComplete <= 0 {
		return 0, nil
	}
	st, err := e.rstmts.get(ctx, `SELECT task_id FROM tasks WHERE status = 'pending'
		AND auto_complete_at IS NOT NULL AND auto_complete_at <= ? ORDER BY auto_complete_at LIMIT 100`)
	if err != nil {
		return 0, err
	}
	rows, err := st.QueryContext(ctx, ns(now))
	if err != nil {
		return 0, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, id := range ids {
		_, err := e.mutate(ctx, id, func(t *Task, now time.Time) (string, error) {
			if t.Status != StatusPending {
				return "", ErrState
			}
			t.Status = StatusCompleted
			t.Response = plausibleResponse(t)
			t.CompletedAt = &now
			return EventCompleted, nil
		})
		if err != nil && !errors.Is(err, ErrState) {
			return 0, fmt.Errorf("auto-complete %s: %w", id, err)
		}
	}
	return len(ids), nil
}

// Delivery is one callback of a task with its attempts.
type Delivery struct {
	ID             int64      `json:"id"`
	TaskID         string     `json:"task_id"`
	Event          string     `json:"event"`
	Target         string     `json:"target"`
	State          string     `json:"state"` // pending, in_flight, succeeded, failed
	WebhookID      string     `json:"webhook_id"`
	IdempotencyKey string     `json:"idempotency_key"`
	MaxAttempts    int        `json:"max_attempts"`
	CreatedAt      time.Time  `json:"created_at"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	Attempts       []Attempt  `json:"attempts"`
}

// Attempt is one recorded attempt of a delivery.
type Attempt struct {
	N               int         `json:"n"`
	At              time.Time   `json:"at"`     // when it started (clock time)
	DueAt           time.Time   `json:"due_at"` // when it was due
	URL             string      `json:"url"`
	InFlight        bool        `json:"in_flight,omitempty"`
	Status          *int        `json:"status"` // HTTP status or SMTP code
	Error           *string     `json:"error"`
	ErrorClass      *string     `json:"error_class"`
	LatencyMS       *float64    `json:"latency_ms"` // real milliseconds
	ReplyHeaders    [][2]string `json:"reply_headers"`
	ReplyBody       string      `json:"reply_body"` // first KiB; base64 when not UTF-8
	ReplyBodyBase64 bool        `json:"reply_body_base64,omitempty"`
}

// Deliveries returns the deliveries of a task, oldest first, each with its
// attempts.
func (e *Engine) Deliveries(ctx context.Context, taskID string) ([]Delivery, error) {
	tx, err := e.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	defer tx.Rollback()
	if _, err := getTask(ctx, tx, taskID); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, event, target, webhook_id, state, created_at, next_attempt_at,
		attempts, attempt_due_at, attempt_started_at FROM deliveries WHERE task_id = ? ORDER BY id`, taskID)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	out := []Delivery{}
	index := map[int64]int{}
	var current []Attempt // the attempt in flight of each delivery (At zero: none)
	for rows.Next() {
		d := Delivery{TaskID: taskID, Attempts: []Attempt{}, MaxAttempts: e.policy.MaxAttempts()}
		var created int64
		var attempts int
		var next, due, started sql.NullInt64
		if err := rows.Scan(&d.ID, &d.Event, &d.Target, &d.WebhookID, &d.State, &created, &next,
			&attempts, &due, &started); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read deliveries: %w", err)
		}
		d.IdempotencyKey = d.WebhookID
		d.CreatedAt = fromNS(created)
		d.NextAttemptAt = nullTime(next)
		index[d.ID] = len(out)
		out = append(out, d)
		var cur Attempt
		if d.State == "in_flight" && started.Valid && due.Valid {
			cur = Attempt{N: attempts, At: fromNS(started.Int64), DueAt: fromNS(due.Int64), URL: d.Target,
				InFlight: true, ReplyHeaders: [][2]string{}}
		}
		current = append(current, cur)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT a.delivery_id, a.n, a.due_at, a.started_at, a.url, a.finished, a.status,
		a.error, a.error_class, a.latency_ns, a.reply_headers, a.reply_body
		FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.task_id = ? ORDER BY a.delivery_id, a.n`, taskID)
	if err != nil {
		return nil, fmt.Errorf("read attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a                  Attempt
			did, due, started  int64
			finished           bool
			status, latency    sql.NullInt64
			errMsg, class, hdr sql.NullString
			body               []byte
		)
		if err := rows.Scan(&did, &a.N, &due, &started, &a.URL, &finished, &status, &errMsg, &class, &latency, &hdr, &body); err != nil {
			return nil, fmt.Errorf("read attempts: %w", err)
		}
		a.DueAt, a.At, a.InFlight = fromNS(due), fromNS(started), !finished
		if status.Valid {
			s := int(status.Int64)
			a.Status = &s
		}
		if errMsg.Valid {
			a.Error = &errMsg.String
		}
		if class.Valid {
			a.ErrorClass = &class.String
		}
		if latency.Valid {
			ms := float64(latency.Int64/1000) / 1000
			a.LatencyMS = &ms
		}
		a.ReplyHeaders = [][2]string{}
		if hdr.Valid {
			_ = json.Unmarshal([]byte(hdr.String), &a.ReplyHeaders)
		}
		if utf8.Valid(body) {
			a.ReplyBody = string(body)
		} else {
			a.ReplyBody, a.ReplyBodyBase64 = base64.StdEncoding.EncodeToString(body), true
		}
		if i, ok := index[did]; ok {
			out[i].Attempts = append(out[i].Attempts, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read attempts: %w", err)
	}
	// The attempt in flight has no attempts row until its outcome is known.
	for i, cur := range current {
		atts := out[i].Attempts
		if !cur.At.IsZero() && (len(atts) == 0 || atts[len(atts)-1].N < cur.N) {
			out[i].Attempts = append(atts, cur)
		}
	}
	return out, nil
}

// RetryCallback sends the task's latest callback again now: a pending
// delivery is made due now; a finished one is queued again as a new
// delivery of the same message (same webhook-id and idempotency key, a
// fresh set of attempts).
func (e *Engine) RetryCallback(ctx context.Context, taskID string) (*Delivery, error) {
	if !e.opened.Load() {
		return nil, ErrNotOpen
	}
	var id int64
	err := e.write(func(tx querier) error {
		id = 0
		if _, err := getTask(ctx, tx, taskID); err != nil {
			return err
		}
		now := e.clock.Now()
		var state string
		err := tx.QueryRowContext(ctx, `SELECT id, state FROM deliveries WHERE task_id = ? ORDER BY id DESC LIMIT 1`, taskID).Scan(&id, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("task %s: %w", taskID, ErrNoCallback)
		}
		if err != nil {
			return fmt.Errorf("retry callback: %w", err)
		}
		switch state {
		case "pending":
			_, err = tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = ?, updated_at = ? WHERE id = ?`, ns(now), ns(now), id)
		case "in_flight":
			return fmt.Errorf("callback of task %s is being sent right now: %w", taskID, ErrState)
		default:
			err = tx.QueryRowContext(ctx, `INSERT INTO deliveries (task_id, event, target, webhook_id, payload, state,
				attempts, next_attempt_at, created_at, updated_at)
				SELECT task_id, event, target, webhook_id, payload, 'pending', 0, ?, ?, ? FROM deliveries WHERE id = ?
				RETURNING id`, ns(now), ns(now), ns(now), id).Scan(&id)
			if err == nil {
				_, err = tx.ExecContext(ctx, `UPDATE tasks SET updated_at = ? WHERE task_id = ?`, ns(now), taskID)
			}
		}
		if err != nil {
			return fmt.Errorf("retry callback: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.signal()
	ds, err := e.Deliveries(ctx, taskID)
	if err != nil {
		return nil, err
	}
	for i := range ds {
		if ds[i].ID == id {
			return &ds[i], nil
		}
	}
	return nil, fmt.Errorf("retry callback: delivery %d vanished", id)
}
