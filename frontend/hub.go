package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/gorilla/websocket"
)

// Defaults of the Hub's tunables; a zero field takes these.
const (
	DefaultBufferSize   = 1024
	DefaultBacklogPage  = 500
	DefaultPingInterval = 30 * time.Second
	DefaultPongWait     = 60 * time.Second
	DefaultWriteWait    = 10 * time.Second
	DefaultReadLimit    = 1024

	// defaultQueue is how many published events may wait for the fan-out.
	defaultQueue = 8192

	// maxBinParam bounds the ?bin= filter; longer names are refused.
	maxBinParam = 256
	// closeGrace bounds the courtesy close frame, and how long Close lets a
	// write that is blocked on a stalled subscriber go on.
	closeGrace = time.Second
)

// Errors of the stream endpoint, mapped to statuses by errorStatus.
var (
	ErrBadSubscription = errors.New("bad subscription")
	ErrHubClosed       = errors.New("hub closed")
	ErrBadEvent        = errors.New("bad event")
	errHandshake       = errors.New("websocket handshake refused")
)

// Message is one live event.
type Message struct {
	// Bin is the bin the event concerns, "" for events of no bin (sender
	// tasks and attempts). A subscriber filtered with ?bin=NAME gets only
	// the messages whose Bin is NAME.
	Bin string
	// ID is the capture id of a capture event, 0 for every other event. It
	// orders captures for resume with ?since=ID: capture events must be
	// published after their commit and in ID order (inbox's single writer
	// does both).
	ID int64
	// Data is the event; it must marshal to a JSON object with a non-empty
	// string "type".
	Data any
}

// Hub fans live events out to websocket subscribers at GET
// /api/v1/stream?bin=NAME&since=ID. The zero value is ready to use; set the
// fields before the first call and do not change them afterwards.
//
// Publish never blocks: a subscriber whose send buffer is full is dropped
// (closed with 1013, "try again later") and may reconnect with ?since=.
// The handshake keeps gorilla's same-origin check: a page on another origin
// cannot open the stream.
type Hub struct {
	// Backlog returns the capture events with ID > since, of one bin (or of
	// every bin when bin is ""), ascending by ID, at most limit of them. It
	// fills the gap of a subscriber that resumes with ?since=. Nil: resume
	// is not offered and ?since= only skips live captures up to since.
	Backlog func(ctx context.Context, bin string, since int64, limit int) ([]Message, error)
	// Head returns the highest capture id stored, 0 when none. With it, a
	// subscriber whose since is beyond the head (its page saw a database
	// that has since been replaced by an emptier one) resumes from the
	// head instead of skipping every new capture up to its since. Nil:
	// since is taken as given.
	Head func(ctx context.Context) (int64, error)
	// BinName checks the bin a subscriber filters on and returns the
	// name its events carry in Message.Bin, e.g. the lower-case form of a
	// case-insensitive name; an error refuses the subscription (400) with
	// its text. Nil: the name is used as given.
	BinName func(name string) (string, error)
	// BacklogPage is the limit passed to Backlog (default 500); the hub
	// pages until a page comes back short.
	BacklogPage int
	// BufferSize is each subscriber's send buffer, in messages (default
	// 1024: a second of events at 1,000/s).
	BufferSize int
	// PingInterval is how often a subscriber is pinged (default 30 s);
	// PongWait is how long the hub waits for any pong before it drops the
	// subscriber (default 60 s, at least PingInterval); WriteWait bounds
	// every write (default 10 s).
	PingInterval time.Duration
	PongWait     time.Duration
	WriteWait    time.Duration
	// ReadLimit is the largest message a subscriber may send, in bytes
	// (default 1024); subscribers have nothing to say, so a bigger one ends
	// the connection (1009).
	ReadLimit int64
	// Logger gets the hub's logs (default slog.Default()), with
	// component=hub added.
	Logger *slog.Logger

	once       sync.Once
	logger     *slog.Logger
	ctx        context.Context // canceled by Close
	cancel     context.CancelFunc
	wg         sync.WaitGroup // the fan-out and every pump goroutine
	queue      chan *frame    // Publish -> fan-out
	queueSize  int            // tests shrink it; 0 is defaultQueue
	active     atomic.Int64   // len(clients), read without the lock
	overflowed atomic.Bool    // an event was lost: every subscriber must resume
	dropped    atomic.Int64

	mu      sync.Mutex
	closed  bool
	clients map[*client]struct{}
}

// client is one subscriber. It is registered before its handshake is
// answered, so conn is nil until then and is set under Hub.mu (the pumps,
// started after, read it freely). Its fields after send are guarded by
// Hub.mu.
type client struct {
	conn   *websocket.Conn
	remote string // the peer's address, for logs
	sub    subscription
	cancel context.CancelFunc
	send   chan *frame

	gone      bool // removed from Hub.clients, send closed
	closeCode int  // the close frame the write pump sends once send is closed
	closeText string
}

// frame is one published message, marshalled once for every subscriber.
type frame struct {
	bin  string
	id   int64
	data []byte
}

// subscription is what a subscriber asked for in its query string.
type subscription struct {
	bin      string // "" for every bin
	since    int64
	hasSince bool
}

func (h *Hub) init() {
	h.once.Do(func() {
		logger := h.Logger
		if logger == nil {
			logger = slog.Default()
		}
		h.logger = logger.With("component", "hub")
		h.ctx, h.cancel = context.WithCancel(context.Background())
		h.clients = make(map[*client]struct{})
		h.queue = make(chan *frame, positive(h.queueSize, defaultQueue))
		h.wg.Add(1)
		go h.fanOut()
	})
}

func (h *Hub) bufferSize() int          { return positive(h.BufferSize, DefaultBufferSize) }
func (h *Hub) backlogPage() int         { return positive(h.BacklogPage, DefaultBacklogPage) }
func (h *Hub) writeWait() time.Duration { return positive(h.WriteWait, DefaultWriteWait) }
func (h *Hub) pingInterval() time.Duration {
	return positive(h.PingInterval, DefaultPingInterval)
}

func (h *Hub) pongWait() time.Duration {
	if h.PongWait > 0 {
		return max(h.PongWait, h.pingInterval())
	}
	return max(DefaultPongWait, 2*h.pingInterval())
}

func (h *Hub) readLimit() int64 { return positive(h.ReadLimit, DefaultReadLimit) }

func positive[T int | int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Clients returns the number of subscribers currently receiving events.
func (h *Hub) Clients() int {
	h.init()
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped returns how many subscribers were dropped for falling behind.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// Publish sends m to every subscriber that wants it. It marshals m.Data once,
// in the caller, and hands the result to the hub's fan-out goroutine, so its
// cost does not grow with the subscribers and no subscriber can slow it: it
// never blocks. A subscriber whose buffer is full is dropped (1013) and
// resumes with ?since=; if the fan-out itself falls behind by its whole
// queue, the event is lost and every subscriber is dropped so that each
// resumes. An event that does not marshal to a JSON object with a "type" is
// logged and not sent. Publish with no subscriber, or after Close, does
// nothing.
func (h *Hub) Publish(m Message) {
	h.init()
	if h.active.Load() == 0 {
		return
	}
	f, err := newFrame(m)
	if err != nil {
		h.logger.Error("event not published", "bin", m.Bin, "id", m.ID, "err", err)
		return
	}
	select {
	case h.queue <- f:
	default:
		if !h.overflowed.Swap(true) {
			h.logger.Error("event fan-out behind: dropping every subscriber", "queue", cap(h.queue), "bin", m.Bin, "id", m.ID)
		}
	}
}

// fanOut hands each published frame to the subscribers that want it.
func (h *Hub) fanOut() {
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case f := <-h.queue:
			h.deliver(f)
		}
	}
}

func (h *Hub) deliver(f *frame) {
	var slow []*client
	h.mu.Lock()
	// A drop is counted before its subscriber's buffer is closed: whoever
	// sees the close frame sees the count.
	if h.overflowed.Swap(false) {
		for c := range h.clients {
			h.dropped.Add(1)
			h.dropLocked(c, websocket.CloseTryAgainLater, "events lost: resume with since")
			slow = append(slow, c)
		}
	}
	for c := range h.clients {
		if c.sub.bin != "" && c.sub.bin != f.bin {
			continue
		}
		select {
		case c.send <- f:
		default:
			h.dropped.Add(1)
			h.dropLocked(c, websocket.CloseTryAgainLater, "slow consumer: resume with since")
			slow = append(slow, c)
		}
	}
	h.mu.Unlock()
	for _, c := range slow {
		h.logger.Warn("subscriber dropped", "remote", c.remote, "bin", c.sub.bin, "buffer", cap(c.send))
	}
}

// newFrame marshals the event once and checks that it is a JSON object with
// a non-empty string "type".
func newFrame(m Message) (*frame, error) {
	data, err := json.Marshal(m.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	if typ, ok := eventType(data); !ok || typ == "" {
		return nil, fmt.Errorf("%w: %.40s... is not a JSON object with a string \"type\"", ErrBadEvent, data)
	}
	return &frame{bin: m.Bin, id: m.ID, data: data}, nil
}

// dropLocked removes c from the hub and closes its send buffer; the write
// pump then sends a close frame with code and text and ends the connection.
// h.mu must be held.
func (h *Hub) dropLocked(c *client, code int, text string) {
	if c.gone {
		return
	}
	c.gone = true
	c.closeCode, c.closeText = code, text
	delete(h.clients, c)
	h.active.Store(int64(len(h.clients)))
	close(c.send)
}

// ServeHTTP upgrades GET /api/v1/stream?bin=NAME&since=ID to a websocket and
// streams events to it until either side closes. With since, the capture
// events after that id are sent first (through Backlog), then live events,
// without gaps or duplicates. Other query parameters are ignored: with
// --auth-token the middleware in front must accept ?access_token=, since a
// browser cannot set headers on a websocket. Refusals are JSON errors: 400
// (bad bin or since, not a websocket), 403 (another origin), 405, 503 (closed).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.init()
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		h.writeError(w, r, fmt.Errorf("%w: method %s, want GET", errMethod, r.Method))
		return
	}
	sub, err := parseSubscription(r.URL.Query())
	if err == nil && sub.bin != "" && h.BinName != nil {
		var name string
		if name, err = h.BinName(sub.bin); err != nil {
			err = fmt.Errorf("%w: %w", ErrBadSubscription, err)
		}
		sub.bin = name
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if h.isClosed() {
		h.writeError(w, r, ErrHubClosed)
		return
	}

	up := websocket.Upgrader{
		HandshakeTimeout: h.writeWait(),
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		// CheckOrigin stays nil: gorilla's same-origin check.
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			h.writeError(w, r, &handshakeError{status: status, reason: reason})
		},
	}
	ctx, cancel := context.WithCancel(h.ctx)
	c := &client{
		remote: r.RemoteAddr,
		sub:    sub,
		cancel: cancel,
		send:   make(chan *frame, h.bufferSize()),
	}
	// Registered before the handshake is answered: a client that has the
	// answer (a page that says "live" once its socket opens) misses no
	// event published after it.
	if !h.add(c) {
		cancel()
		h.writeError(w, r, ErrHubClosed)
		return
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		h.mu.Lock()
		h.dropLocked(c, websocket.CloseNormalClosure, "")
		h.mu.Unlock()
		cancel()
		h.wg.Add(-2) // the pumps add counted will not run
		return       // the Error callback has answered
	}
	h.mu.Lock()
	c.conn = conn
	h.mu.Unlock()
	h.logger.Debug("subscriber connected", "remote", c.remote, "bin", sub.bin, "since", sub.since)
	go h.writePump(ctx, c)
	go h.readPump(c)
}

// add registers c, before its handshake is answered and before any
// backlog is read, so that no event committed in between is missed, and
// counts its two pumps. It reports false once the hub is closed.
func (h *Hub) add(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.clients[c] = struct{}{}
	h.active.Store(int64(len(h.clients)))
	h.wg.Add(2)
	return true
}

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// readPump reads (and discards) what the subscriber sends, keeping the read
// deadline alive with pongs. When reading fails the subscriber is gone.
func (h *Hub) readPump(c *client) {
	defer h.wg.Done()
	defer c.cancel()

	c.conn.SetReadLimit(h.readLimit())
	pongWait := h.pongWait()
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		_, rd, err := c.conn.NextReader()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				h.logger.Debug("subscriber read ended", "remote", c.remote, "err", err)
			}
			break
		}
		if _, err := io.Copy(io.Discard, rd); err != nil {
			break
		}
	}
	h.mu.Lock()
	h.dropLocked(c, websocket.CloseNormalClosure, "")
	h.mu.Unlock()
}

// writePump is the only writer of c.conn: it sends the backlog, then live
// frames and pings, until c.send is closed or a write fails.
func (h *Hub) writePump(ctx context.Context, c *client) {
	defer h.wg.Done()
	defer c.conn.Close()

	ping := time.NewTicker(h.pingInterval())
	defer ping.Stop()

	// Live capture events up to skip were sent by the backlog, or the
	// subscriber already had them.
	since := c.sub.since
	if c.sub.hasSince && h.Head != nil {
		head, err := h.Head(ctx)
		switch {
		case err != nil:
			h.logger.Warn("resume: head unknown", "remote", c.remote, "since", since, "err", err)
		case head < since:
			h.logger.Debug("resume: since beyond the newest capture", "remote", c.remote, "since", since, "head", head)
			since = head
		}
	}
	skip := since
	if c.sub.hasSince && h.Backlog != nil {
		last, err := h.sendBacklog(ctx, c, since, ping.C)
		if err != nil {
			if ctx.Err() == nil {
				h.logger.Error("resume failed", "remote", c.remote, "bin", c.sub.bin, "since", c.sub.since, "err", err)
				h.closeWith(c, websocket.CloseInternalServerErr, "resume failed")
			}
			return
		}
		skip = last
	}

	for {
		select {
		case f, ok := <-c.send:
			if !ok {
				h.closeWith(c, c.closeCode, c.closeText)
				return
			}
			if f.id > 0 && f.id <= skip {
				continue
			}
			_ = c.conn.SetWriteDeadline(time.Now().Add(h.writeWait()))
			if err := c.conn.WriteMessage(websocket.TextMessage, f.data); err != nil {
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.writeWait())); err != nil {
				return
			}
		}
	}
}

// sendBacklog writes the capture events after since, page by page, and
// returns the last id sent (or since). Live events queue in c.send meanwhile.
func (h *Hub) sendBacklog(ctx context.Context, c *client, since int64, ping <-chan time.Time) (int64, error) {
	last := since
	page := h.backlogPage()
	for {
		msgs, err := h.Backlog(ctx, c.sub.bin, last, page)
		if err != nil {
			return last, fmt.Errorf("backlog after %d: %w", last, err)
		}
		slices.SortFunc(msgs, func(a, b Message) int { return cmpInt64(a.ID, b.ID) })
		progressed := false
		for _, m := range msgs {
			if m.ID <= last || (c.sub.bin != "" && m.Bin != c.sub.bin) {
				continue
			}
			data, err := json.Marshal(m.Data)
			if err != nil {
				return last, fmt.Errorf("backlog event %d: %w", m.ID, err)
			}
			_ = c.conn.SetWriteDeadline(time.Now().Add(h.writeWait()))
			if err := c.conn.WriteMessage(websocket.TextMessage, data); err != nil {
				return last, fmt.Errorf("write backlog event %d: %w", m.ID, err)
			}
			last, progressed = m.ID, true
		}
		if len(msgs) < page || !progressed {
			return last, nil
		}
		select {
		case <-ping:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.writeWait())); err != nil {
				return last, fmt.Errorf("ping: %w", err)
			}
		default:
		}
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// closeWith sends a close frame (best effort) before the deferred Close.
func (h *Hub) closeWith(c *client, code int, text string) {
	if code == 0 {
		code = websocket.CloseNormalClosure
	}
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text),
		time.Now().Add(min(closeGrace, h.writeWait())))
}

// Close closes every subscriber (1001, going away), refuses new ones, stops
// the fan-out, and waits until every goroutine of the hub has ended or ctx
// is done. It may be
// called more than once, e.g. from http.Server.RegisterOnShutdown and again
// before the stores the Backlog reads are closed.
func (h *Hub) Close(ctx context.Context) error {
	h.init()
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		h.cancel()
		for c := range h.clients {
			h.dropLocked(c, websocket.CloseGoingAway, "server shutting down")
			// A write blocked on a subscriber that reads nothing ends now,
			// not after WriteWait (net.Conn deadlines are goroutine-safe).
			// A subscriber still in its handshake has no conn yet: its
			// write pump finds send closed and says goodbye.
			if c.conn != nil {
				_ = c.conn.UnderlyingConn().SetWriteDeadline(time.Now().Add(closeGrace))
			}
		}
	}
	h.mu.Unlock()

	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close hub: %w", ctx.Err())
	}
}

// parseSubscription reads ?bin= and ?since= (other parameters, such as
// access_token, are left to the middleware in front).
func parseSubscription(q map[string][]string) (subscription, error) {
	var sub subscription
	if v, ok := q["bin"]; ok {
		if len(v) != 1 {
			return sub, fmt.Errorf("%w: bin given %d times, want at most once", ErrBadSubscription, len(v))
		}
		bin := v[0]
		if bin == "" {
			return sub, fmt.Errorf("%w: bin is empty; leave it out to get every bin", ErrBadSubscription)
		}
		if len(bin) > maxBinParam {
			return sub, fmt.Errorf("%w: bin is %d bytes long, want at most %d", ErrBadSubscription, len(bin), maxBinParam)
		}
		for _, r := range bin {
			if r == unicode.ReplacementChar || unicode.IsControl(r) || r == '/' {
				return sub, fmt.Errorf("%w: bin %q has a character a bin name cannot have", ErrBadSubscription, bin)
			}
		}
		sub.bin = bin
	}
	if v, ok := q["since"]; ok {
		if len(v) != 1 {
			return sub, fmt.Errorf("%w: since given %d times, want at most once", ErrBadSubscription, len(v))
		}
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || n < 0 {
			return sub, fmt.Errorf("%w: since %q is not a capture id (a non-negative integer)", ErrBadSubscription, v[0])
		}
		sub.since, sub.hasSince = n, true
	}
	return sub, nil
}
