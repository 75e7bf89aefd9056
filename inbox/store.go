package inbox

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store keeps bins and captures in one SQLite file. All writes go through a
// single writer goroutine that commits captures in batches (group commit):
// Add returns only once its capture is durable. Reads use a separate pool.
type Store struct {
	Path      string        // the SQLite file, e.g. callbin-data/inbox.db
	MaxBatch  int           // captures committed in one transaction at most; default 512
	Linger    time.Duration // how long a batch may wait for expected captures (Expect); default 200µs, <0 for none
	Retention time.Duration // when > 0, captures older than this are dropped
	Events    Publisher     // may be nil; gets events after commit
	Metrics   *Metrics      // may be nil
	Logger    *slog.Logger

	wdb, rdb *sql.DB
	cdb      *sql.DB // checkpoints
	reqs     chan *writeReq
	quit     chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after every commit

	expected atomic.Int64 // captures announced by Expect and not yet added

	gate   sync.RWMutex // held for reading while a request is queued
	closed bool         // guarded by gate

	binIDs   map[string]int64     // writer goroutine only
	stmts    map[int][2]*sql.Stmt // writer goroutine only: inserts of n captures and bodies
	touchBin *sql.Stmt            // writer goroutine only
	lastID   int64                // writer goroutine only: the highest capture id handed out

	bg       context.Context // background work; canceled by Close
	cancelBg context.CancelFunc
}

// writeReq is one unit of work for the writer: a capture to add in the next
// batch, or a function to run in a transaction of its own.
type writeReq struct {
	capture *Capture
	fn      func(tx *sql.Tx) error
	events  []Event // published after fn commits
	done    chan error
}

// dsn is the connection policy, set on every connection the pool opens.
// synchronous(NORMAL) with WAL: a commit survives the process being killed
// (not a power cut) without an fsync per commit.
func dsn(path string, extra string) string {
	// "file:" + the escaped path, relative or absolute (a file://
	// URL would read a relative path's first folder as a host).
	u := "file:" + (&url.URL{Path: path}).EscapedPath()
	q := "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate" + extra
	return u + "?" + q
}

// Open opens (creating if needed) the database, applies migrations and
// starts the writer.
func (s *Store) Open() error {
	if s.Path == "" {
		return fmt.Errorf("inbox: store path is empty")
	}
	if s.MaxBatch <= 0 {
		s.MaxBatch = 512
	}
	if s.Linger == 0 {
		s.Linger = 200 * time.Microsecond
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	var err error
	// The writer does not checkpoint: a background connection does, so
	// that commits never wait for the WAL to be copied back.
	if s.wdb, err = sql.Open("sqlite", dsn(s.Path, "&_pragma=wal_autocheckpoint(0)")); err != nil {
		return fmt.Errorf("open %s: %w", s.Path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	var mode string
	if err := s.wdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		s.wdb.Close()
		return fmt.Errorf("open %s: %w", s.Path, err)
	}
	if mode != "wal" {
		s.wdb.Close()
		return fmt.Errorf("open %s: journal_mode is %q, want wal", s.Path, mode)
	}
	if err := s.migrate(); err != nil {
		s.wdb.Close()
		return err
	}
	if s.rdb, err = sql.Open("sqlite", dsn(s.Path, "&_pragma=query_only(1)")); err != nil {
		s.wdb.Close()
		return fmt.Errorf("open %s: %w", s.Path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	s.rdb.SetMaxOpenConns(n)
	s.rdb.SetMaxIdleConns(n)

	s.reqs = make(chan *writeReq, s.MaxBatch*2)
	s.quit = make(chan struct{})
	s.changed = make(chan struct{})
	s.binIDs = make(map[string]int64)
	s.stmts = make(map[int][2]*sql.Stmt)
	if err := s.prepareInserts(); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return fmt.Errorf("open %s: %w", s.Path, err)
	}
	// AUTOINCREMENT keeps the highest id ever used, deleted or not.
	if err := s.wdb.QueryRow(`SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'captures'), 0)`).Scan(&s.lastID); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return fmt.Errorf("open %s: %w", s.Path, err)
	}
	s.bg, s.cancelBg = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.writer()
	if s.cdb, err = sql.Open("sqlite", dsn(s.Path, "")); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return fmt.Errorf("open %s: %w", s.Path, err)
	}
	s.cdb.SetMaxOpenConns(1)
	s.wg.Add(1)
	go s.checkpoint()
	if s.Retention > 0 {
		s.wg.Add(1)
		go s.retain()
	}
	return nil
}

// Close stops the writer after the work already queued and closes the
// database.
func (s *Store) Close(ctx context.Context) error {
	if s.wdb == nil {
		return nil
	}
	// Once closed is set no request can be queued, so the writer, draining
	// the queue after quit, answers every request that made it in.
	s.cancelBg()
	s.gate.Lock()
	if !s.closed {
		s.closed = true
		close(s.quit)
	}
	s.gate.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	// A last full checkpoint leaves the data in the main file.
	_, err := s.cdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return errors.Join(err, s.cdb.Close(), s.rdb.Close(), s.wdb.Close())
}

// checkpointEvery is how often the WAL is copied back into the database.
const checkpointEvery = 250 * time.Millisecond

// checkpoint copies committed WAL frames into the database file, beside
// the writer rather than in its commits (PASSIVE never blocks it).
func (s *Store) checkpoint() {
	defer s.wg.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		if _, err := s.cdb.ExecContext(s.bg, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil && s.bg.Err() == nil {
			s.Logger.Warn("checkpoint", "err", err)
		}
	}
}

func (s *Store) migrate() error {
	if _, err := s.wdb.Exec(`CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := s.applyMigration(name); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

func (s *Store) applyMigration(name string) error {
	tx, err := s.wdb.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrationFS.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(string(body)); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO migrations (name, applied_at) VALUES (?, ?)`, name, time.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}

// Add stores each capture in its bin (created if it does not exist yet)
// and returns once they are committed, with their IDs set. Several
// captures (one e-mail to several bins) are queued together, so that they
// normally share a commit.
func (s *Store) Add(ctx context.Context, caps ...*Capture) error {
	reqs := make([]*writeReq, len(caps))
	for i, c := range caps {
		reqs[i] = &writeReq{capture: c, done: make(chan error, 1)}
	}
	return s.submit(ctx, reqs...)
}

// write runs fn in a transaction of its own on the writer, then publishes
// events.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error, events ...Event) error {
	return s.submit(ctx, &writeReq{fn: fn, events: events, done: make(chan error, 1)})
}

func (s *Store) submit(ctx context.Context, reqs ...*writeReq) error {
	s.gate.RLock()
	if s.closed {
		s.gate.RUnlock()
		return ErrClosed
	}
	queued := 0
	var err error
	for _, req := range reqs {
		select {
		case s.reqs <- req:
			queued++
			continue
		case <-ctx.Done():
			err = ctx.Err()
		}
		break
	}
	s.gate.RUnlock()
	// Once queued, a request is carried out even if ctx ends: wait for it
	// so that the caller never answers before the commit.
	for _, req := range reqs[:queued] {
		err = errors.Join(err, <-req.done)
	}
	return err
}

// writer owns the write connection. It takes every capture waiting in the
// queue (up to MaxBatch), commits them in one transaction, and only then
// wakes their handlers. Other writes run in transactions of their own.
func (s *Store) writer() {
	defer s.wg.Done()
	caps := make([]*writeReq, 0, s.MaxBatch)
	var ops []*writeReq
	add := func(req *writeReq) {
		if req.fn != nil {
			ops = append(ops, req)
		} else {
			caps = append(caps, req)
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		caps, ops = caps[:0], ops[:0]
		select {
		case req := <-s.reqs:
			add(req)
		case <-s.quit:
			// Finish what is queued, then stop.
			for {
				select {
				case req := <-s.reqs:
					add(req)
				default:
					s.run(caps, ops)
					return
				}
			}
		}
		// While captures are on their way (their bodies being read), wait a
		// moment for them rather than commit the first few alone and make
		// the rest wait a whole commit. With none coming, commit at once.
		waiting := false
	fill:
		for len(caps) < s.MaxBatch {
			select {
			case req := <-s.reqs:
				add(req)
				continue
			default:
			}
			if len(ops) > 0 || s.Linger <= 0 || s.expected.Load() <= 0 {
				break
			}
			if !waiting {
				timer.Reset(s.Linger)
				waiting = true
			}
			select {
			case req := <-s.reqs:
				add(req)
			case <-timer.C:
				waiting = false
				break fill
			}
		}
		timer.Stop() // since Go 1.23 a stopped timer delivers nothing stale
		s.run(caps, ops)
	}
}

// Expect tells the writer that a capture is on its way (its body is being
// read), so that the batch being filled waits a moment for it. Call the
// returned function, once, before Add, or when the capture is given up.
func (s *Store) Expect() (arrived func()) {
	s.expected.Add(1)
	var once sync.Once
	return func() { once.Do(func() { s.expected.Add(-1) }) }
}

func (s *Store) run(caps, ops []*writeReq) {
	if len(caps) > 0 {
		s.commitCaptures(caps)
	}
	for _, op := range ops {
		err := s.inTx(op.fn)
		// Any function may have deleted a bin: forget the cached ids.
		clear(s.binIDs)
		if err == nil {
			s.notify()
			for _, ev := range op.events {
				s.publish(ev)
			}
		}
		op.done <- err
	}
}

func (s *Store) inTx(fn func(tx *sql.Tx) error) error {
	tx, err := s.wdb.Begin()
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

type binTouch struct {
	id    int64
	count int64
	last  int64
}

const (
	captureInsertCols = 16
	captureInsert     = `INSERT INTO captures (id, bin_id, kind, method, path, query, proto, headers, size, truncated,
		remote_addr, tls, received_at, read_ns, reply, email) VALUES `
	bodyInsert = `INSERT INTO bodies (capture_id, body) VALUES `
)

// chunkSizes are the row counts of the multi-row INSERT statements the
// writer prepares: a batch is cut into chunks of these sizes, so that one
// statement carries many captures.
var chunkSizes = []int{64, 16, 4, 1}

// prepareInserts prepares, for each chunk size n, the statements that
// insert n captures and n bodies at once.
func (s *Store) prepareInserts() error {
	for _, n := range chunkSizes {
		row := "(" + strings.TrimSuffix(strings.Repeat("?,", captureInsertCols), ",") + ")"
		caps, err := s.wdb.Prepare(captureInsert + strings.TrimSuffix(strings.Repeat(row+",", n), ","))
		if err != nil {
			return fmt.Errorf("prepare insert: %w", err)
		}
		bodies, err := s.wdb.Prepare(bodyInsert + strings.TrimSuffix(strings.Repeat("(?,?),", n), ","))
		if err != nil {
			return fmt.Errorf("prepare insert: %w", err)
		}
		s.stmts[n] = [2]*sql.Stmt{caps, bodies}
	}
	var err error
	s.touchBin, err = s.wdb.Prepare(`UPDATE bins SET capture_count = capture_count + ?,
		last_capture_at = max(coalesce(last_capture_at, 0), ?) WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("prepare update: %w", err)
	}
	return nil
}

func (s *Store) commitCaptures(reqs []*writeReq) {
	var created []string
	err := s.inTx(func(tx *sql.Tx) error {
		created = created[:0]
		touched := make(map[int64]*binTouch, 1)
		capArgs := make([]any, 0, captureInsertCols*len(reqs))
		bodyArgs := make([]any, 0, 2*len(reqs))
		id := s.lastID
		for _, r := range reqs {
			c := r.capture
			binID, isNew, err := s.binID(tx, c.Bin, c.ReceivedAt)
			if err != nil {
				return err
			}
			if isNew {
				created = append(created, c.Bin)
			}
			row, err := encodeCapture(c)
			if err != nil {
				return err
			}
			id++
			c.ID = id
			capArgs = append(capArgs, c.ID, binID, c.Kind, c.Method, c.Path, c.Query, c.Proto, row.headers, c.Size,
				c.Truncated, c.RemoteAddr, c.TLS, c.ReceivedAt.UnixNano(), int64(c.ReadTime), row.reply, row.email)
			body := c.Body
			if body == nil {
				body = []byte{}
			}
			bodyArgs = append(bodyArgs, c.ID, body)
			t := touched[binID]
			if t == nil {
				t = &binTouch{id: binID}
				touched[binID] = t
			}
			t.count++
			t.last = max(t.last, c.ReceivedAt.UnixNano())
		}
		for done := 0; done < len(reqs); {
			n := chunkSizes[len(chunkSizes)-1]
			for _, size := range chunkSizes {
				if size <= len(reqs)-done {
					n = size
					break
				}
			}
			st := s.stmts[n]
			if _, err := tx.Stmt(st[0]).Exec(capArgs[done*captureInsertCols : (done+n)*captureInsertCols]...); err != nil {
				return fmt.Errorf("insert captures: %w", err)
			}
			if _, err := tx.Stmt(st[1]).Exec(bodyArgs[done*2 : (done+n)*2]...); err != nil {
				return fmt.Errorf("insert bodies: %w", err)
			}
			done += n
		}
		for _, t := range touched {
			if _, err := tx.Stmt(s.touchBin).Exec(t.count, t.last, t.id); err != nil {
				return fmt.Errorf("update bin: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		// The transaction rolled back: ids handed out in it are void, and so
		// are bins it created.
		clear(s.binIDs)
		for _, r := range reqs {
			r.capture.ID = 0
		}
		err = fmt.Errorf("store capture: %w", err)
	} else {
		s.lastID = reqs[len(reqs)-1].capture.ID
		s.notify()
		for _, name := range created {
			s.publish(binEvent(name, "created"))
		}
		for _, r := range reqs {
			s.publish(CaptureEvent(r.capture))
		}
	}
	if s.Metrics != nil {
		s.Metrics.BatchSize.Observe(float64(len(reqs)))
	}
	for _, r := range reqs {
		r.done <- err
	}
}

// binID returns the id of the bin called name, creating it if needed.
func (s *Store) binID(tx *sql.Tx, name string, now time.Time) (id int64, created bool, err error) {
	if id, ok := s.binIDs[name]; ok {
		return id, false, nil
	}
	err = tx.QueryRow(`SELECT id FROM bins WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRow(`INSERT INTO bins (name, created_at) VALUES (?, ?) RETURNING id`, name, now.UnixNano()).Scan(&id)
		created = true
	}
	if err != nil {
		return 0, false, fmt.Errorf("bin %q: %w", name, err)
	}
	s.binIDs[name] = id
	return id, created, nil
}

func (s *Store) publish(ev Event) {
	if s.Events != nil {
		s.Events.Publish(ev)
	}
}

// notify wakes everyone waiting for a change (long polls).
func (s *Store) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// changes returns a channel closed at the next commit.
func (s *Store) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}
