package inbox

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

type captureRow struct {
	headers []byte
	reply   string
	email   sql.NullString
}

func encodeCapture(c *Capture) (captureRow, error) {
	var row captureRow
	row.headers = encodeHeaders(c.Headers)
	b, err := json.Marshal(c.Reply)
	if err != nil {
		return row, fmt.Errorf("encode reply: %w", err)
	}
	row.reply = string(b)
	if c.Email != nil {
		if b, err = json.Marshal(c.Email); err != nil {
			return row, fmt.Errorf("encode email: %w", err)
		}
		row.email = sql.NullString{String: string(b), Valid: true}
	}
	return row, nil
}

const captureColumns = `c.id, b.name, c.kind, c.method, c.path, c.query, c.proto, c.headers, c.size, c.truncated,
	c.remote_addr, c.tls, c.received_at, c.read_ns, c.reply, c.email`

type scanner interface{ Scan(dest ...any) error }

func scanCapture(sc scanner, extra ...any) (*Capture, error) {
	var (
		c                     Capture
		headers               []byte
		reply                 string
		email                 sql.NullString
		receivedAt, readNanos int64
	)
	dest := append([]any{&c.ID, &c.Bin, &c.Kind, &c.Method, &c.Path, &c.Query, &c.Proto, &headers, &c.Size,
		&c.Truncated, &c.RemoteAddr, &c.TLS, &receivedAt, &readNanos, &reply, &email}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	c.ReceivedAt = time.Unix(0, receivedAt).UTC()
	c.ReadTime = time.Duration(readNanos)
	var err error
	if c.Headers, err = decodeHeaders(headers); err != nil {
		return nil, fmt.Errorf("capture %d headers: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(reply), &c.Reply); err != nil {
		return nil, fmt.Errorf("capture %d reply: %w", c.ID, err)
	}
	if email.Valid {
		c.Email = new(Email)
		if err := json.Unmarshal([]byte(email.String), c.Email); err != nil {
			return nil, fmt.Errorf("capture %d email: %w", c.ID, err)
		}
	}
	return &c, nil
}

const binColumns = `name, created_at, scenario, capture_count, last_capture_at`

func scanBin(sc scanner) (*Bin, error) {
	var (
		b         Bin
		created   int64
		scenario  sql.NullString
		lastCapAt sql.NullInt64
	)
	if err := sc.Scan(&b.Name, &created, &scenario, &b.CaptureCount, &lastCapAt); err != nil {
		return nil, err
	}
	b.CreatedAt = time.Unix(0, created).UTC()
	if scenario.Valid {
		b.Scenario = []byte(scenario.String)
	}
	if lastCapAt.Valid && lastCapAt.Int64 > 0 {
		b.LastCaptureAt = time.Unix(0, lastCapAt.Int64).UTC()
	}
	return &b, nil
}

// FindBins returns every bin, by name.
func (s *Store) FindBins(ctx context.Context) ([]*Bin, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+binColumns+` FROM bins ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("find bins: %w", err)
	}
	defer rows.Close()
	bins := []*Bin{}
	for rows.Next() {
		b, err := scanBin(rows)
		if err != nil {
			return nil, fmt.Errorf("find bins: %w", err)
		}
		bins = append(bins, b)
	}
	return bins, rows.Err()
}

// FindBin returns the bin called name, or ErrNotFound.
func (s *Store) FindBin(ctx context.Context, name string) (*Bin, error) {
	b, err := scanBin(s.rdb.QueryRowContext(ctx, `SELECT `+binColumns+` FROM bins WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("bin %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find bin %q: %w", name, err)
	}
	return b, nil
}

// CreateBin creates an empty bin, or returns ErrConflict if one of that name
// exists. scenario may be nil.
func (s *Store) CreateBin(ctx context.Context, name string, scenario []byte, now time.Time) error {
	var sc sql.NullString
	if scenario != nil {
		sc = sql.NullString{String: string(scenario), Valid: true}
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO bins (name, created_at, scenario) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			name, now.UnixNano(), sc)
		if err != nil {
			return fmt.Errorf("create bin %q: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("bin %q already exists: %w", name, ErrConflict)
		}
		return nil
	}, binEvent(name, "created"))
}

// DeleteBin deletes a bin and its captures.
func (s *Store) DeleteBin(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM bins WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("delete bin %q: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("bin %q: %w", name, ErrNotFound)
		}
		return nil
	}, binEvent(name, "deleted"))
}

// ClearBin deletes every capture of a bin, keeping the bin.
func (s *Store) ClearBin(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRow(`SELECT id FROM bins WHERE name = ?`, name).Scan(&id); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("bin %q: %w", name, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("clear bin %q: %w", name, err)
		}
		if _, err := tx.Exec(`DELETE FROM captures WHERE bin_id = ?`, id); err != nil {
			return fmt.Errorf("clear bin %q: %w", name, err)
		}
		_, err := tx.Exec(`UPDATE bins SET capture_count = 0, last_capture_at = NULL WHERE id = ?`, id)
		return err
	}, binEvent(name, "cleared"))
}

// SetScenario sets (or, with nil, removes) a bin's script, creating the bin
// if it does not exist.
func (s *Store) SetScenario(ctx context.Context, name string, scenario []byte, now time.Time) error {
	var sc sql.NullString
	if scenario != nil {
		sc = sql.NullString{String: string(scenario), Valid: true}
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO bins (name, created_at, scenario) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET scenario = excluded.scenario`, name, now.UnixNano(), sc)
		if err != nil {
			return fmt.Errorf("set scenario of %q: %w", name, err)
		}
		return nil
	}, binEvent(name, "scenario"))
}

// escapeLike escapes the LIKE wildcards of q for use with ESCAPE '\'.
func escapeLike(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

// FindCaptures returns one page of a bin's captures (every bin's when
// f.Bin is ""), without their bodies unless f.Bodies, newest first unless
// f.Oldest. It returns ErrNotFound for an unknown bin.
func (s *Store) FindCaptures(ctx context.Context, f CaptureFilter) ([]*Capture, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultLimit
	}
	f.Limit = min(f.Limit, MaxLimit)
	var (
		where = []string{"1"}
		args  []any
	)
	if f.Bin != "" {
		var binID int64
		err := s.rdb.QueryRowContext(ctx, `SELECT id FROM bins WHERE name = ?`, f.Bin).Scan(&binID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("bin %q: %w", f.Bin, ErrNotFound)
		} else if err != nil {
			return nil, fmt.Errorf("find captures: %w", err)
		}
		where, args = []string{"c.bin_id = ?"}, []any{binID}
	}
	if f.Before > 0 {
		where, args = append(where, "c.id < ?"), append(args, f.Before)
	}
	if f.After > 0 {
		where, args = append(where, "c.id > ?"), append(args, f.After)
	}
	if f.Kind != "" {
		where, args = append(where, "c.kind = ?"), append(args, f.Kind)
	}
	if f.Q != "" {
		p := escapeLike(f.Q)
		where = append(where, `(c.path LIKE ? ESCAPE '\' OR CAST(c.headers AS TEXT) LIKE ? ESCAPE '\'
			OR EXISTS (SELECT 1 FROM bodies d WHERE d.capture_id = c.id AND CAST(d.body AS TEXT) LIKE ? ESCAPE '\'))`)
		args = append(args, p, p, p)
	}
	order := "DESC"
	if f.Oldest {
		order = "ASC"
	}
	cols, join := captureColumns, ""
	if f.Bodies {
		cols, join = captureColumns+", d.body", " LEFT JOIN bodies d ON d.capture_id = c.id"
	}
	q := `SELECT ` + cols + ` FROM captures c JOIN bins b ON b.id = c.bin_id` + join + `
		WHERE ` + strings.Join(where, " AND ") + ` ORDER BY c.id ` + order + ` LIMIT ?`
	rows, err := s.rdb.QueryContext(ctx, q, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("find captures: %w", err)
	}
	defer rows.Close()
	caps := []*Capture{}
	for rows.Next() {
		var body []byte
		var extra []any
		if f.Bodies {
			extra = []any{&body}
		}
		c, err := scanCapture(rows, extra...)
		if err != nil {
			return nil, fmt.Errorf("find captures: %w", err)
		}
		if f.Bodies {
			c.Body = append([]byte{}, body...)
		}
		caps = append(caps, c)
	}
	return caps, rows.Err()
}

// FindCapture returns one capture of a bin with its body.
func (s *Store) FindCapture(ctx context.Context, bin string, id int64) (*Capture, error) {
	var body []byte
	c, err := scanCapture(s.rdb.QueryRowContext(ctx, `SELECT `+captureColumns+`, d.body
		FROM captures c JOIN bins b ON b.id = c.bin_id LEFT JOIN bodies d ON d.capture_id = c.id
		WHERE b.name = ? AND c.id = ?`, bin, id), &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("capture %d in bin %q: %w", id, bin, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find capture %d: %w", id, err)
	}
	if body == nil {
		body = []byte{}
	}
	c.Body = body
	return c, nil
}

// WaitCapture waits until the bin holds a capture with an id above f.After
// (matching f.Kind and f.Q) and returns the oldest such one. It returns
// ErrTimeout when ctx ends first because of its deadline.
func (s *Store) WaitCapture(ctx context.Context, f CaptureFilter) (*Capture, error) {
	f.Limit, f.Oldest, f.Before, f.Bodies = 1, true, 0, true
	for {
		changed := s.changes()
		caps, err := s.FindCaptures(ctx, f)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if len(caps) > 0 {
			return caps[0], nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, ErrTimeout
			}
			return nil, ctx.Err()
		}
	}
}

// LastCaptureID returns the highest capture id stored, 0 when none.
func (s *Store) LastCaptureID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, `SELECT max(id) FROM captures`).Scan(&id); err != nil {
		return 0, fmt.Errorf("last capture id: %w", err)
	}
	return id.Int64, nil
}

// retentionChunk is how many captures one retention transaction deletes, so
// that captures never wait long behind it.
const retentionChunk = 2000

// oldest selects, among the oldest captures by id (parameter 1: how many),
// those received before a time (parameter 2: unix ns). Ids grow with
// time, so no index on the time is needed.
const oldest = `SELECT id, bin_id FROM (SELECT id, bin_id, received_at FROM captures ORDER BY id LIMIT ?) WHERE received_at < ?`

// DeleteBefore deletes the captures received before t and returns how many
// went.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(tx *sql.Tx) error {
			rows, err := tx.Query(`SELECT bin_id, count(*) FROM (`+oldest+`) GROUP BY bin_id`, retentionChunk, t.UnixNano())
			if err != nil {
				return err
			}
			counts := map[int64]int64{}
			for rows.Next() {
				var id, c int64
				if err := rows.Scan(&id, &c); err != nil {
					rows.Close()
					return err
				}
				counts[id] = c
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			res, err := tx.Exec(`DELETE FROM captures WHERE id IN (SELECT id FROM (`+oldest+`))`, retentionChunk, t.UnixNano())
			if err != nil {
				return err
			}
			n, _ = res.RowsAffected()
			for id, c := range counts {
				if _, err := tx.Exec(`UPDATE bins SET capture_count = max(0, capture_count - ?) WHERE id = ?`, c, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("delete captures before %s: %w", t.Format(time.RFC3339), err)
		}
		total += n
		if n < retentionChunk {
			return total, nil
		}
	}
}

// retain drops captures older than Retention, once a minute at most.
func (s *Store) retain() {
	defer s.wg.Done()
	every := min(max(s.Retention/10, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.DeleteBefore(s.bg, time.Now().Add(-s.Retention))
		if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
			s.Logger.Error("retention", "err", err)
		} else if n > 0 {
			s.Logger.Info("retention dropped captures", "count", n, "older_than", s.Retention)
		}
		select {
		case <-t.C:
		case <-s.quit:
			return
		}
	}
}

// encodeHeaders packs header fields byte for byte (a value need not be
// UTF-8): for each, the length of the name, the name, the length of the
// value, the value, lengths as uvarints.
func encodeHeaders(hs []Header) []byte {
	n := 0
	for _, h := range hs {
		n += len(h[0]) + len(h[1]) + 4
	}
	b := make([]byte, 0, n)
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h[0])))
		b = append(b, h[0]...)
		b = binary.AppendUvarint(b, uint64(len(h[1])))
		b = append(b, h[1]...)
	}
	return b
}

func decodeHeaders(b []byte) ([]Header, error) {
	hs := []Header{}
	for len(b) > 0 {
		var h Header
		for i := range h {
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return nil, errors.New("corrupt header fields")
			}
			h[i], b = string(b[k:k+int(n)]), b[k+int(n):]
		}
		hs = append(hs, h)
	}
	return hs, nil
}
