package sender

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// v4DB makes a sender database at migration 4 (before tasks and deliveries
// lost AUTOINCREMENT) and runs setup on it with foreign keys off.
func v4DB(t *testing.T, setup string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sender.db")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: p}).EscapedPath()+"?"+pragmas)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if err := migrateTo(ctx, db, 4); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PRAGMA foreign_keys = OFF", setup, "PRAGMA foreign_keys = ON"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	return p
}

// v4Rows are a version-4 database's rows: a completed task whose callback
// succeeded at the first attempt, and a task with a unique_id whose
// callback is pending (due in an hour) after one failed attempt.
const v4Rows = `
INSERT INTO tasks (seq, task_id, type, params, status, created_at, updated_at, completed_at, callback_url,
	response, unique_id, unique_claim)
VALUES (7, 'aaaaaaaaaaaaaaaaaaaaaaaa', 'categorization', '{"categories":["a","b"]}', 'completed', 1000, 2000, 2000,
	'http://127.0.0.1:9/hook', '{"category":"a"}', NULL, NULL),
	(9, 'bbbbbbbbbbbbbbbbbbbbbbbb', 'generic', '{}', 'completed', 3000, 4000, 4000,
	'http://127.0.0.1:9/hook', '{"x":1}', 'u-1', 'u-1');
INSERT INTO deliveries (id, task_id, event, target, webhook_id, payload, state, attempts, next_attempt_at,
	created_at, updated_at)
VALUES (40, 'aaaaaaaaaaaaaaaaaaaaaaaa', 'completed', 'http://127.0.0.1:9/hook', 'msg_a', X'7B7D', 'succeeded', 1, NULL,
	2000, 2500),
	(41, 'bbbbbbbbbbbbbbbbbbbbbbbb', 'completed', 'http://127.0.0.1:9/hook', 'msg_b', X'7B7D', 'pending', 1,
	9000000000000000000, 4000, 4500);
INSERT INTO attempts (delivery_id, n, due_at, started_at, url, finished, status, latency_ns)
VALUES (40, 1, 2000, 2001, 'http://127.0.0.1:9/hook', 1, 200, 1000000),
	(41, 1, 4000, 4001, 'http://127.0.0.1:9/hook', 1, 503, 2000000);`

// TestMigratePlainRowids opens a version-4 database: its rows come through
// the table rebuild whole, ids carry on past the largest, unique_id still
// holds, and foreign keys are on again.
func TestMigratePlainRowids(t *testing.T) {
	p := v4DB(t, v4Rows)
	rc := MustReceiver(t, nil)
	e, log := MustEngine(t, func(e *Engine) { e.Path = p })
	ctx := context.Background()

	a, err := e.GetTask(ctx, "aaaaaaaaaaaaaaaaaaaaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != "completed" || a.CallbackSucceeded == nil || !*a.CallbackSucceeded ||
		a.CallbackSucceededAt == nil || !a.CallbackSucceededAt.Equal(fromNS(2500)) || string(a.Response) != `{"category":"a"}` {
		t.Errorf("task a after migration: %+v", a)
	}
	b, err := e.GetTask(ctx, "bbbbbbbbbbbbbbbbbbbbbbbb")
	if err != nil {
		t.Fatal(err)
	}
	if b.CallbackSucceeded != nil || b.UniqueID == nil || *b.UniqueID != "u-1" {
		t.Errorf("task b after migration: %+v", b)
	}
	ds, err := e.Deliveries(ctx, "bbbbbbbbbbbbbbbbbbbbbbbb")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ID != 41 || ds[0].State != "pending" || len(ds[0].Attempts) != 1 ||
		ds[0].Attempts[0].Status == nil || *ds[0].Attempts[0].Status != 503 {
		t.Fatalf("deliveries of task b after migration: %+v", ds)
	}

	var schema string
	if err := e.rdb.QueryRow(`SELECT group_concat(sql, ';') FROM sqlite_master WHERE name IN ('tasks', 'deliveries')`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToUpper(schema), "AUTOINCREMENT") {
		t.Errorf("tables still use AUTOINCREMENT: %s", schema)
	}
	var fk int
	if err := e.wc.conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys on the write connection: %d, %v; want 1", fk, err)
	}

	body, _ := json.Marshal(map[string]any{"callback_url": rc.URL, "unique_id": "u-1"})
	if _, err := e.CreateTask(ctx, TypeGeneric, body); !errors.Is(err, ErrDuplicate) {
		t.Errorf("reuse of a migrated unique_id: got %v, want ErrDuplicate", err)
	}
	body, _ = json.Marshal(map[string]any{"callback_url": rc.URL, "unique_id": "u-2"})
	c, err := e.CreateTask(ctx, TypeGeneric, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CompleteTask(ctx, c.TaskID, json.RawMessage(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	if !log.decided(t, c.TaskID) {
		t.Fatalf("callback of a task created after the migration failed")
	}
	var seq, id int64
	if err := e.rdb.QueryRow(`SELECT t.seq, d.id FROM tasks t JOIN deliveries d USING (task_id) WHERE t.task_id = ?`,
		c.TaskID).Scan(&seq, &id); err != nil {
		t.Fatal(err)
	}
	if seq != 10 || id != 42 {
		t.Errorf("new task's seq %d and delivery's id %d, want 10 and 42 (one past the largest)", seq, id)
	}
	page, err := e.ListTasks(ctx, TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(page.Docs); got != 3 || page.Docs[0].TaskID != c.TaskID {
		t.Errorf("list after migration: %d tasks, newest %v", got, page.Docs)
	}
}

// TestMigrationRefusesBrokenForeignKeys: a version-4 database with a
// delivery whose task is missing fails the rebuild's foreign key check,
// which rolls the rebuild back and leaves the database as it was.
func TestMigrationRefusesBrokenForeignKeys(t *testing.T) {
	p := v4DB(t, v4Rows+`
INSERT INTO deliveries (id, task_id, event, target, webhook_id, payload, state, created_at, updated_at)
VALUES (50, 'cccccccccccccccccccccccc', 'completed', 'http://127.0.0.1:9/hook', 'msg_c', X'7B7D', 'failed', 1, 1);`)
	e := &Engine{Path: p, Logger: slog.New(slog.NewTextHandler(testLogOut(), nil))}
	err := e.Open()
	if err == nil {
		e.Close(context.Background())
		t.Fatal("open: got no error, want the foreign key check's")
	}
	if !strings.Contains(err.Error(), "0005") || !strings.Contains(err.Error(), "deliveries row 50") {
		t.Errorf("open: %v; want migration 0005 failing on deliveries row 50", err)
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: p}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	var schema string
	if err := db.QueryRow(`SELECT MAX(version), (SELECT sql FROM sqlite_master WHERE name = 'tasks') FROM schema_migrations`).Scan(
		&version, &schema); err != nil {
		t.Fatal(err)
	}
	if version != 4 || !strings.Contains(schema, "AUTOINCREMENT") {
		t.Errorf("after the failed migration: version %d, tasks %q; want 4 and the old table", version, schema)
	}
}
