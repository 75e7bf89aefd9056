package sender

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// freshTasks remembers the last tasks created, as they were created, so
// that completing one can build its callback payload without reading it
// back, outside the writer. A remembered task is only a guess: the
// completion it prepares applies only if the row is still exactly as
// created in every field the payload takes (completeFresh's UPDATE checks
// that), else CompleteTask completes the task as it finds it.
type freshTasks struct {
	mu    sync.Mutex
	tasks map[string]*Task
	order []string // ring of ids, oldest at next
	next  int
}

// maxFresh bounds the tasks remembered.
const maxFresh = 1024

func (f *freshTasks) put(t *Task) {
	c := *t
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tasks == nil {
		f.tasks = make(map[string]*Task, maxFresh)
		f.order = make([]string, maxFresh)
	}
	if old := f.order[f.next]; old != "" {
		delete(f.tasks, old)
	}
	f.order[f.next] = c.TaskID
	f.next = (f.next + 1) % maxFresh
	f.tasks[c.TaskID] = &c
}

// take returns and forgets the task remembered under id (nil if none).
func (f *freshTasks) take(id string) *Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[id]
	delete(f.tasks, id) // its slot in order is reused in turn
	return t
}

// completion is a completion of a task as created, prepared outside the
// writer: the completed task, its callback and the profile its target
// came from.
type completion struct {
	task    *Task
	job     *job
	now     time.Time
	profile *Profile
	ownURL  bool // the target is the task's own callback_url
}

// prepareCompletion prepares the completion with response of t, a task as
// created; nil when it has no callback target (or its payload fails).
func (e *Engine) prepareCompletion(t *Task, response string) *completion {
	c := &completion{profile: e.profile.Load(), now: e.clock.Now().UTC()}
	c.ownURL = t.CallbackURL != nil && *t.CallbackURL != ""
	t.Status, t.Response, t.UpdatedAt, t.CompletedAt = StatusCompleted, json.RawMessage(response), c.now, &c.now
	j, err := newJob(t, EventCompleted, c.now, c.profile)
	if err != nil || j == nil {
		return nil
	}
	c.task, c.job = t, j
	return c
}

// apply completes the task in the writer's transaction if it is still
// pending and unreviewed, as created; done false: it was not (or the
// profile's default target changed), and nothing was written.
func (c *completion) apply(ctx context.Context, tx querier, p *Profile) (done bool, err error) {
	if !c.ownURL && p != c.profile {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE tasks SET status = 'completed', response = ?, completed_at = ?, updated_at = ?
		WHERE task_id = ? AND status = 'pending' AND customer_review_status IS NULL
		AND customer_review_comments = '[]' AND prior_responses = '[]'`,
		string(c.task.Response), ns(c.now), ns(c.now), c.task.TaskID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
