package sender

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements of the write connection, so hot
// statements are parsed once. A statement missing inside a transaction (the
// one connection is busy then) runs unprepared and is prepared after the
// transaction ends.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

func (c *stmtCache) lookup(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stmts[q]
	if s == nil && len(c.stmts) < 256 {
		c.pending[q] = true
	}
	return s
}

// prepareMissing prepares the statements that missed; the caller must hold
// no connection of the pool.
func (c *stmtCache) prepareMissing(ctx context.Context) {
	c.mu.Lock()
	var qs []string
	for q := range c.pending {
		qs = append(qs, q)
	}
	clear(c.pending)
	c.mu.Unlock()
	for _, q := range qs {
		s, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue // it runs unprepared
		}
		c.mu.Lock()
		if c.stmts[q] == nil {
			c.stmts[q] = s
			s = nil
		}
		c.mu.Unlock()
		if s != nil {
			s.Close()
		}
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.stmts {
		s.Close()
	}
	clear(c.stmts)
}

// wtx is a write transaction that uses the statement cache.
type wtx struct {
	tx    *sql.Tx
	cache *stmtCache
}

func (e *Engine) begin(ctx context.Context) (*wtx, error) {
	tx, err := e.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &wtx{tx: tx, cache: e.stmts}, nil
}

func (t *wtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := t.cache.lookup(q); s != nil {
		return t.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

func (t *wtx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s := t.cache.lookup(q); s != nil {
		return t.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *wtx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if s := t.cache.lookup(q); s != nil {
		return t.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// Commit commits, then prepares the statements that missed the cache.
func (t *wtx) Commit() error {
	err := t.tx.Commit()
	t.cache.prepareMissing(context.Background())
	return err
}

// Rollback ends the transaction if it is still open.
func (t *wtx) Rollback() { _ = t.tx.Rollback() }

// get returns the prepared statement for q, preparing it on a miss; only
// for callers that hold no connection of the pool (never inside a
// transaction on a one-connection pool).
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
