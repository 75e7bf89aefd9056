package sender

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// taskColumns are read from task_view (tasks with the callback_succeeded,
// callback_succeeded_at and updated_at their latest delivery gives them).
const taskColumns = `seq, task_id, type, instruction, params, status, created_at, updated_at, completed_at,
	callback_url, callback_succeeded, callback_succeeded_at, response, metadata, unique_id, is_test,
	customer_review_status, customer_review_comments, prior_responses`

// taskRow is a Task with its storage-only fields.
type taskRow struct {
	Task
	seq int64
}

func scanTask(sc interface{ Scan(...any) error }) (*taskRow, error) {
	var (
		t                                 taskRow
		params, metadata, comments, prior string
		createdAt, updatedAt              int64
		completedAt, succeededAt          sql.NullInt64
		callbackURL, uniqueID, review     sql.NullString
		response                          sql.NullString
		succeeded                         sql.NullBool
	)
	err := sc.Scan(&t.seq, &t.TaskID, &t.Type, &t.Instruction, &params, &t.Status, &createdAt, &updatedAt,
		&completedAt, &callbackURL, &succeeded, &succeededAt, &response, &metadata, &uniqueID, &t.IsTest,
		&review, &comments, &prior)
	if err != nil {
		return nil, err
	}
	t.Params = json.RawMessage(params)
	t.Metadata = json.RawMessage(metadata)
	t.CreatedAt = fromNS(createdAt)
	t.UpdatedAt = fromNS(updatedAt)
	t.CompletedAt = nullTime(completedAt)
	t.CallbackSucceededAt = nullTime(succeededAt)
	if callbackURL.Valid {
		t.CallbackURL = &callbackURL.String
	}
	if uniqueID.Valid {
		t.UniqueID = &uniqueID.String
	}
	if review.Valid {
		t.CustomerReviewStatus = &review.String
	}
	if succeeded.Valid {
		b := succeeded.Bool
		t.CallbackSucceeded = &b
	}
	if response.Valid {
		t.Response = json.RawMessage(response.String)
	} else {
		t.Response = json.RawMessage("null")
	}
	if comments != "[]" {
		if err := json.Unmarshal([]byte(comments), &t.CustomerReviewComments); err != nil {
			return nil, fmt.Errorf("task %s: customer_review_comments: %w", t.TaskID, err)
		}
	}
	if prior != "[]" {
		if err := json.Unmarshal([]byte(prior), &t.PriorResponses); err != nil {
			return nil, fmt.Errorf("task %s: prior_responses: %w", t.TaskID, err)
		}
	}
	return &t, nil
}

func getTask(ctx context.Context, q querier, id string) (*taskRow, error) {
	t, err := scanTask(q.QueryRowContext(ctx, "SELECT "+taskColumns+" FROM task_view WHERE task_id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("task %q: %w", truncate(id, 64), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get task %s: %w", id, err)
	}
	return t, nil
}

// jsonList is the JSON of a list, "[]" when it is empty.
func jsonList[T any](v []T) string {
	if len(v) == 0 {
		return "[]"
	}
	return jsonOrEmpty(v, "[]")
}

func jsonOrEmpty(v any, empty string) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return empty
	}
	return string(b)
}

func rawOrNull(r json.RawMessage) any {
	if len(r) == 0 || isNull(r) {
		return nil
	}
	return string(r)
}

// insertTask stores a new task, as created. claim is the unique_id it holds ("" none).
func insertTask(ctx context.Context, tx querier, t *Task, claim string, autoCompleteAt *time.Time) error {
	var claimArg any
	if claim != "" {
		// The write transaction holds the database lock, so this check and
		// the insert cannot race; the UNIQUE constraint stays as a backstop.
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM tasks WHERE unique_claim = ?", claim).Scan(&n); err != nil {
			return fmt.Errorf("check unique_id: %w", err)
		}
		if n > 0 {
			return errorOf(ErrDuplicate, "unique_id %q is already used by another task", truncate(claim, 64))
		}
		claimArg = claim
	}
	// A new task has one time (created = updated), bound once (?1), and
	// leaves the columns of later states at their defaults (nulls, empty
	// lists), which are not bound.
	if t.CompletedAt != nil || t.CallbackSucceeded != nil || t.CallbackSucceededAt != nil ||
		t.CustomerReviewStatus != nil || len(t.CustomerReviewComments) > 0 || len(t.PriorResponses) > 0 ||
		!t.CreatedAt.Equal(t.UpdatedAt) {
		return fmt.Errorf("insert task %s: not a task as created", t.TaskID)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO tasks (task_id, type, instruction, params, status, created_at,
		updated_at, callback_url, response, metadata, unique_id, unique_claim, is_test, auto_complete_at)
		VALUES (?2, ?3, ?4, ?5, ?6, ?1, ?1, ?7, ?8, ?9, ?10, ?11, ?12, ?13)`,
		ns(t.CreatedAt), t.TaskID, t.Type, t.Instruction, string(t.Params), t.Status,
		strPtr(t.CallbackURL), rawOrNull(t.Response), string(t.Metadata), strPtr(t.UniqueID), claimArg, t.IsTest,
		nullNS(autoCompleteAt))
	if err != nil {
		return fmt.Errorf("insert task: %w", err)
	}
	return nil
}

// updateTaskState writes the mutable fields of t (callback_succeeded is
// its latest delivery's: see task_view).
func updateTaskState(ctx context.Context, tx querier, t *Task) error {
	_, err := tx.ExecContext(ctx, `UPDATE tasks SET status = ?, updated_at = ?, completed_at = ?,
		response = ?, customer_review_status = ?, customer_review_comments = ?,
		prior_responses = ? WHERE task_id = ?`,
		t.Status, ns(t.UpdatedAt), nullNS(t.CompletedAt), rawOrNull(t.Response), strPtr(t.CustomerReviewStatus), jsonList(t.CustomerReviewComments),
		jsonList(t.PriorResponses), t.TaskID)
	if err != nil {
		return fmt.Errorf("update task %s: %w", t.TaskID, err)
	}
	return nil
}

func strPtr(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func boolPtr(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

// TaskFilter selects tasks for GET /v1/tasks.
type TaskFilter struct {
	Status               string
	Type                 string
	CustomerReviewStatus string
	UniqueID             string
	CreatedAfter         *time.Time
	CreatedBefore        *time.Time
	UpdatedAfter         *time.Time
	UpdatedBefore        *time.Time
	CompletedAfter       *time.Time
	CompletedBefore      *time.Time
	Limit                int    // 1..100, default 100
	NextToken            string // from a previous page
}

// TaskPage is one page of tasks, newest first.
type TaskPage struct {
	Docs      []*Task `json:"docs"`
	Total     int     `json:"total"`
	Limit     int     `json:"limit"`
	Offset    int     `json:"offset"`
	HasMore   bool    `json:"has_more"`
	NextToken *string `json:"next_token"`
}

// pageToken is the opaque next_token: the last seq seen and the offset.
func encodeToken(seq int64, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10) + ":" + strconv.Itoa(offset)))
}

func decodeToken(s string) (seq int64, offset int, err error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, 0, fieldErr("next_token", "not a token this server issued")
	}
	a, o, ok := strings.Cut(string(b), ":")
	seq, err1 := strconv.ParseInt(a, 10, 64)
	offset, err2 := strconv.Atoi(o)
	if !ok || err1 != nil || err2 != nil || seq < 0 || offset < 0 {
		return 0, 0, fieldErr("next_token", "not a token this server issued")
	}
	return seq, offset, nil
}

func listTasks(ctx context.Context, db *sql.DB, f TaskFilter) (*TaskPage, error) {
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > 100 {
		return nil, fieldErr("limit", "must be from 1 to 100")
	}
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Type != "" {
		add("type = ?", f.Type)
	}
	if f.CustomerReviewStatus != "" {
		add("customer_review_status = ?", f.CustomerReviewStatus)
	}
	if f.UniqueID != "" {
		add("unique_id = ?", f.UniqueID)
	}
	times := []struct {
		t    *time.Time
		cond string
	}{
		{f.CreatedAfter, "created_at > ?"}, {f.CreatedBefore, "created_at < ?"},
		{f.UpdatedAfter, "updated_at > ?"}, {f.UpdatedBefore, "updated_at < ?"},
		{f.CompletedAfter, "completed_at > ?"}, {f.CompletedBefore, "completed_at < ?"},
	}
	for _, c := range times {
		if c.t != nil {
			add(c.cond, ns(*c.t))
		}
	}
	cond := "1=1"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	defer tx.Rollback()
	page := &TaskPage{Docs: []*Task{}, Limit: f.Limit}
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM task_view WHERE "+cond, args...).Scan(&page.Total); err != nil {
		return nil, fmt.Errorf("count tasks: %w", err)
	}
	pageCond, pageArgs := cond, append([]any(nil), args...)
	if f.NextToken != "" {
		seq, offset, err := decodeToken(f.NextToken)
		if err != nil {
			return nil, err
		}
		pageCond += " AND seq < ?"
		pageArgs = append(pageArgs, seq)
		page.Offset = offset
	}
	pageArgs = append(pageArgs, f.Limit+1)
	rows, err := tx.QueryContext(ctx, "SELECT "+taskColumns+" FROM task_view WHERE "+pageCond+" ORDER BY seq DESC LIMIT ?", pageArgs...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		if len(page.Docs) == f.Limit {
			page.HasMore = true
			break
		}
		page.Docs = append(page.Docs, &t.Task)
		last = t.seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	if page.HasMore {
		tok := encodeToken(last, page.Offset+len(page.Docs))
		page.NextToken = &tok
	}
	return page, nil
}
