package sender

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// pragmas is the connection policy, set per connection through the DSN.
// synchronous(NORMAL) in WAL mode keeps every commit across a process crash
// (kill -9); only an OS crash or power loss may lose the last commits.
const pragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"

// openDB opens the write connection (one) and the read pool on the file at p,
// checks the journal mode and applies the migrations.
func openDB(ctx context.Context, p string) (wdb, rdb *sql.DB, err error) {
	if p == "" {
		return nil, nil, fmt.Errorf("open sender database: %w: Path is empty", ErrInvalid)
	}
	if strings.ContainsAny(p, "?#") {
		return nil, nil, fmt.Errorf("open sender database: %w: path %q contains ? or #", ErrInvalid, p)
	}
	base := "file:" + (&url.URL{Path: p}).EscapedPath() + "?" + pragmas
	// The write connection does not checkpoint: the checkpointer does, on
	// a connection of its own, so that commits never copy the WAL back.
	wdb, err = sql.Open("sqlite", base+"&_pragma=wal_autocheckpoint(0)&_txlock=immediate")
	if err != nil {
		return nil, nil, fmt.Errorf("open sender database %s: %w", p, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	var mode string
	if err := wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		wdb.Close()
		return nil, nil, fmt.Errorf("open sender database %s: %w", p, err)
	}
	if !strings.EqualFold(mode, "wal") {
		wdb.Close()
		return nil, nil, fmt.Errorf("open sender database %s: journal_mode is %q: %w", p, mode, ErrJournalNotWAL)
	}
	if err := migrate(ctx, wdb); err != nil {
		wdb.Close()
		return nil, nil, fmt.Errorf("migrate sender database %s: %w", p, err)
	}
	rdb, err = sql.Open("sqlite", base+"&_pragma=query_only(1)&_txlock=deferred")
	if err != nil {
		wdb.Close()
		return nil, nil, fmt.Errorf("open sender read pool %s: %w", p, err)
	}
	rdb.SetMaxOpenConns(4)
	rdb.SetMaxIdleConns(4)
	if err := rdb.PingContext(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, nil, fmt.Errorf("open sender read pool %s: %w", p, err)
	}
	return wdb, rdb, nil
}

// checkpointEvery is the least time between two checkpoints.
const checkpointEvery = 250 * time.Millisecond

// checkpointer copies committed WAL frames back into the database file on
// a connection of its own, beside the writer rather than inside its
// commits. The writer nudges it after each commit; it checkpoints at most
// every checkpointEvery, and sleeps without a timer while nothing is
// written. PASSIVE checkpoints never block the writer or readers.
type checkpointer struct {
	db    *sql.DB
	log   *slog.Logger
	nudge chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

func openCheckpointer(ctx context.Context, p string, log *slog.Logger) (*checkpointer, error) {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: p}).EscapedPath()+"?"+pragmas)
	if err != nil {
		return nil, fmt.Errorf("open sender checkpoint connection %s: %w", p, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sender checkpoint connection %s: %w", p, err)
	}
	c := &checkpointer{db: db, log: log, nudge: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// wrote tells the checkpointer that a commit added to the WAL.
func (c *checkpointer) wrote() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTimer(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.nudge:
		case <-c.stop:
			return
		}
		if _, err := c.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			c.log.Warn("checkpoint", "err", err)
		}
		t.Reset(checkpointEvery)
		select {
		case <-t.C:
		case <-c.stop:
			return
		}
	}
}

// close stops the checkpointer and, once no other connection writes, leaves
// every committed page in the database file and the WAL empty.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	_, err := c.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	if err != nil {
		err = fmt.Errorf("checkpoint: %w", err)
	}
	return errors.Join(err, c.db.Close())
}

// migrate applies every embedded migration not yet recorded, each in its own
// transaction together with its record.
func migrate(ctx context.Context, db *sql.DB) error {
	return migrateTo(ctx, db, -1)
}

// migrateTo is migrate, stopping after version last (-1: no limit).
//
// A migration may rebuild a table other tables refer to, so it runs the
// way SQLite documents for that: on one connection with foreign keys off,
// checked with foreign_key_check before its commit (a violation fails the
// migration and rolls it back), and on again afterwards.
func migrateTo(ctx context.Context, db *sql.DB, last int) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("migration %s: name must start with a number and _", base)
		}
		if last >= 0 && version > last {
			break
		}
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", version).Scan(&n); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if n > 0 {
			continue
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if err := applyMigration(ctx, conn, version, base, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, version int, name, body string) (err error) {
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return err
	}
	defer func() {
		if _, ferr := conn.ExecContext(ctx, "PRAGMA foreign_keys = ON"); ferr != nil && err == nil {
			err = ferr
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("foreign_key_check: %w", err)
	}
	var bad []string
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			rows.Close()
			return fmt.Errorf("foreign_key_check: %w", err)
		}
		if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%s row %d refers to a missing %s", table, rowid.Int64, parent))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("foreign_key_check: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("foreign keys broken: %s", strings.Join(bad, "; "))
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		version, name, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ns and fromNS convert between clock times and stored integers.
func ns(t time.Time) int64 { return t.UnixNano() }

func fromNS(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNS(n.Int64)
	return &t
}

func nullNS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}
