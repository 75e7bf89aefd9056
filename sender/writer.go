package sender

import (
	"context"
	"runtime"
)

// writeOp is one unit of work for the writer: fn runs inside a transaction
// shared with other ops, and done gets its result once the transaction has
// committed. fn may run more than once (a batch that failed is retried op by
// op), so it must reset whatever it reports through its closure.
type writeOp struct {
	ctx  context.Context
	fn   func(tx querier) error
	done chan error
}

// maxBatch bounds the ops committed in one transaction.
const maxBatch = 128

// write runs fn in the writer's next transaction and returns once it is
// committed (or failed). This is group commit: concurrent API calls, claims
// and attempt results share transactions instead of queueing for the one
// write connection one by one.
func (e *Engine) write(ctx context.Context, fn func(tx querier) error) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case e.ops <- op:
	case <-e.writerDone:
		return ErrNotOpen
	}
	return <-op.done
}

// runWriter commits batches of write ops until stopWriter is closed.
//
// A batch takes every op already waiting. Before it commits, the writer
// yields the processor (twice, taking what arrived meanwhile): goroutines
// that are runnable right then, typically callers about to submit, get to
// run and join this commit instead of paying for one of their own. An idle
// engine loses nothing by it: a yield with nothing else to run returns at
// once. Unlike a timed linger, this never holds a batch for callers that
// are themselves waiting on it.
func (e *Engine) runWriter() {
	defer close(e.writerDone)
	for {
		var batch []*writeOp
		select {
		case op := <-e.ops:
			batch = append(batch, op)
		case <-e.stopWriter:
			return
		}
		yields := 0
		for len(batch) < maxBatch {
			select {
			case op := <-e.ops:
				batch = append(batch, op)
				continue
			default:
			}
			if yields == maxYields {
				break
			}
			yields++
			runtime.Gosched()
		}
		e.commitBatch(batch)
	}
}

// maxYields bounds the yields of the writer before a commit.
const maxYields = 2

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
	e.ckpt.wrote()
	return errs, nil
}
