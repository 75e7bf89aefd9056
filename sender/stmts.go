package sender

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache keeps prepared statements of the read pool, so hot queries are
// parsed once.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}}
}

// get returns the prepared statement for q, preparing it on a miss.
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	s := c.stmts[q]
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.stmts[q]; old != nil {
		s.Close()
		return old, nil
	}
	c.stmts[q] = s
	return s, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.stmts {
		s.Close()
	}
	clear(c.stmts)
}

// writeConn is the one write connection, held by the engine from Open to
// Close: no other code can take it, so its statements are prepared on it
// once and its transactions are plain BEGIN IMMEDIATE / COMMIT statements.
// Only one goroutine at a time uses it: Open and Close before and after the
// writer goroutine, the writer in between.
type writeConn struct {
	conn                    *sql.Conn
	stmts                   map[string]*sql.Stmt
	begin, commit, rollback *sql.Stmt
	inTx                    bool
}

// maxWriteStmts bounds the statements kept prepared on the write connection
// (the hot ones are a dozen; this only guards against a leak).
const maxWriteStmts = 256

func openWriteConn(ctx context.Context, db *sql.DB) (*writeConn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("take the write connection: %w", err)
	}
	w := &writeConn{conn: conn, stmts: map[string]*sql.Stmt{}}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{{&w.begin, "BEGIN IMMEDIATE"}, {&w.commit, "COMMIT"}, {&w.rollback, "ROLLBACK"}} {
		if *p.st, err = conn.PrepareContext(ctx, p.q); err != nil {
			w.close()
			return nil, fmt.Errorf("prepare %s: %w", p.q, err)
		}
	}
	return w, nil
}

// stmt returns the statement for q prepared on the write connection.
func (w *writeConn) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s := w.stmts[q]; s != nil {
		return s, nil
	}
	s, err := w.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(w.stmts) < maxWriteStmts {
		w.stmts[q] = s
	}
	return s, nil
}

// beginTx starts a write transaction. Should a failed ROLLBACK have left a
// transaction open, it is rolled back and BEGIN tried once more.
func (w *writeConn) beginTx(ctx context.Context) error {
	if _, err := w.begin.ExecContext(ctx); err != nil {
		_, _ = w.rollback.ExecContext(ctx)
		if _, err := w.begin.ExecContext(ctx); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
	}
	w.inTx = true
	return nil
}

// commitTx commits the write transaction; if that fails, it rolls back.
func (w *writeConn) commitTx(ctx context.Context) error {
	if _, err := w.commit.ExecContext(ctx); err != nil {
		w.rollbackTx()
		return fmt.Errorf("commit: %w", err)
	}
	w.inTx = false
	return nil
}

// rollbackTx ends the write transaction, if one is open, undoing it.
func (w *writeConn) rollbackTx() {
	if !w.inTx {
		return
	}
	w.inTx = false
	// SQLite may have rolled back already (after some errors): then
	// ROLLBACK fails with "no transaction is active", which is fine. A
	// transaction left open by any other failure is dealt with by the next
	// beginTx.
	_, _ = w.rollback.ExecContext(context.Background())
}

// run runs fn in a transaction of its own.
func (w *writeConn) run(ctx context.Context, fn func(tx querier) error) error {
	if err := w.beginTx(ctx); err != nil {
		return err
	}
	if err := fn(wtx{w}); err != nil {
		w.rollbackTx()
		return err
	}
	return w.commitTx(ctx)
}

func (w *writeConn) close() error {
	for _, s := range w.stmts {
		s.Close()
	}
	clear(w.stmts)
	for _, s := range []*sql.Stmt{w.begin, w.commit, w.rollback} {
		if s != nil {
			s.Close()
		}
	}
	w.rollbackTx()
	return w.conn.Close()
}

// wtx runs statements in the write connection's current transaction. The
// transaction is shared by the ops of a batch, so no caller's context may
// interrupt it: statements run under the writer's own context, never
// canceled (a canceled caller's op still commits, or fails on its own).
// It also spares the driver a watcher goroutine per statement.
type wtx struct{ w *writeConn }

func (t wtx) ExecContext(_ context.Context, q string, args ...any) (sql.Result, error) {
	ctx := context.Background()
	s, err := t.w.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (t wtx) QueryContext(_ context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx := context.Background()
	s, err := t.w.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (t wtx) QueryRowContext(_ context.Context, q string, args ...any) *sql.Row {
	ctx := context.Background()
	s, err := t.w.stmt(ctx, q)
	if err != nil {
		// A *sql.Row cannot be made to carry err: run the query unprepared,
		// so that Scan reports the same failure.
		return t.w.conn.QueryRowContext(ctx, q, args...)
	}
	return s.QueryRowContext(ctx, args...)
}
