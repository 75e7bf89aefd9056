package sender

import (
	"context"
	"time"
)

// writeOp is one unit of work for the writer: fn runs inside a transaction
// shared with other ops, and done gets its result once the transaction has
// committed. fn may run more than once (a batch that failed is retried op by
// op), so it must reset whatever it reports through its closure.
type writeOp struct {
	ctx  context.Context
	fn   func(tx querier) error
	done chan error
	at   time.Time // when it was submitted
}

// maxBatch bounds the ops committed in one transaction.
const maxBatch = 128

// write runs fn in the writer's next transaction and returns once it is
// committed (or failed). This is group commit: concurrent API calls, claims
// and attempt results share transactions instead of queueing for the one
// write connection one by one.
func (e *Engine) write(ctx context.Context, fn func(tx querier) error) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1), at: time.Now()}
	select {
	case e.ops <- op:
	case <-e.writerDone:
		return ErrNotOpen
	}
	return <-op.done
}

// runWriter commits batches of write ops until stopWriter is closed.
//
// A batch takes every op already waiting. While ops arrive close together
// (the typical gap between submissions, an average of recent ones, is under
// maxGap) it also waits up to twice that gap for the next one, and so on,
// for at most maxLinger since the batch began: under load one commit serves
// many callers instead of each paying for its own, and an idle engine never
// waits.
func (e *Engine) runWriter() {
	defer close(e.writerDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var (
		last time.Time     // submission time of the last op taken
		gap  time.Duration // moving average of the gaps between submissions
	)
	take := func(batch []*writeOp, op *writeOp) []*writeOp {
		if !last.IsZero() {
			g := max(op.at.Sub(last), 0)
			gap += (g - gap) / 8
		}
		if op.at.After(last) {
			last = op.at
		}
		return append(batch, op)
	}
	for {
		var batch []*writeOp
		select {
		case op := <-e.ops:
			batch = take(batch, op)
		case <-e.stopWriter:
			return
		}
		start := time.Now()
	fill:
		for len(batch) < maxBatch {
			select {
			case op := <-e.ops:
				batch = take(batch, op)
				continue
			default:
			}
			wait := 2 * gap
			if gap > maxGap || wait <= 0 {
				break
			}
			if left := maxLinger - time.Since(start); wait > left {
				wait = left
			}
			if wait <= 0 {
				break
			}
			timer.Reset(wait)
			select {
			case op := <-e.ops:
				timer.Stop()
				batch = take(batch, op)
			case <-timer.C:
				break fill
			}
		}
		e.commitBatch(batch)
	}
}

// Group commit tuning: see runWriter.
const (
	maxGap    = 100 * time.Microsecond
	maxLinger = 500 * time.Microsecond
)

func (e *Engine) commitBatch(batch []*writeOp) {
	if len(batch) > 1 {
		// Optimistically run the whole batch in one transaction; if any op
		// fails, roll it all back and run each op on its own, so one op's
		// failure never undoes another's work.
		errs, err := e.runOps(batch)
		if err == nil {
			for i, op := range batch {
				op.done <- errs[i]
			}
			return
		}
	}
	for _, op := range batch {
		errs, err := e.runOps([]*writeOp{op})
		if err == nil {
			err = errs[0]
		}
		op.done <- err
	}
}

// runOps runs ops in one transaction and commits it if every op succeeded.
// err is a failure of the transaction or of any op (then nothing is kept).
func (e *Engine) runOps(ops []*writeOp) ([]error, error) {
	ctx := context.Background()
	if err := e.wc.beginTx(ctx); err != nil {
		return nil, err
	}
	errs := make([]error, len(ops))
	for i, op := range ops {
		if errs[i] = op.fn(wtx{e.wc}); errs[i] != nil {
			e.wc.rollbackTx()
			return nil, errs[i]
		}
	}
	if err := e.wc.commitTx(ctx); err != nil {
		return nil, err
	}
	e.commits.Add(1)
	return errs, nil
}
