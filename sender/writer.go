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
	fn   func(tx querier) error
	done chan error
}

// maxBatch bounds the ops committed in one transaction.
const maxBatch = 128

// write runs fn in the writer's next transaction and returns once it is
// committed (or failed). This is group commit: concurrent API calls, claims
// and attempt results share transactions instead of queueing for the one
// write connection one by one. Once queued, a write runs even if the
// request that made it is canceled meanwhile.
//
// The queue is buffered, so a caller parks once, for its result, rather
// than also until the writer takes its op: every wake-up of a goroutine
// waits its turn for a processor, and on a busy machine those waits add
// up to more than the writes themselves.
func (e *Engine) write(fn func(tx querier) error) error {
	op := &writeOp{fn: fn, done: make(chan error, 1)}
	select {
	case e.ops <- op:
	case <-e.writerDone:
		return ErrNotOpen
	}
	select {
	case err := <-op.done:
		return err
	case <-e.writerDone:
		// The writer has stopped: its last results are already sent.
		select {
		case err := <-op.done:
			return err
		default:
			return ErrNotOpen
		}
	}
}

// opQueue is the capacity of the writer's queue.
const opQueue = 1024

// runWriter commits batches of write ops until stopWriter is closed, and
// then the ops queued by then.
func (e *Engine) runWriter() {
	defer close(e.writerDone)
	for {
		select {
		case op := <-e.ops:
			e.runBatch(op)
		case <-e.stopWriter:
			for {
				select {
				case op := <-e.ops:
					e.runBatch(op)
				default:
					return
				}
			}
		}
	}
}

// runBatch opens a transaction, runs first in it and then every op that
// is queued by the time the one before it has run, and commits once the
// queue is empty (or the batch full). Ops that arrive while earlier ones
// run join the same commit, so under load commits grow instead of queueing.
//
// When the queue is empty the writer yields the processor (at most
// maxYields times) before it commits: goroutines runnable right then,
// typically callers about to submit, get to run and join this commit
// instead of paying for one of their own. An idle engine loses nothing by
// it: a yield with nothing else to run returns at once. Unlike a timed
// linger, this never holds a batch for callers that are themselves waiting
// on it.
//
// If any op or the commit fails, the transaction is rolled back and each
// op of the batch is run again in a transaction of its own, so that one
// op's failure never undoes another's work.
func (e *Engine) runBatch(first *writeOp) {
	batch := []*writeOp{first}
	err := e.wc.beginTx(context.Background())
	for i := 0; err == nil; i++ {
		if err = batch[i].fn(wtx{e.wc}); err != nil {
			break
		}
		if len(batch) == maxBatch {
			break
		}
		next := e.nextOp()
		if next == nil {
			break
		}
		batch = append(batch, next)
	}
	if err == nil {
		if err = e.wc.commitTx(context.Background()); err == nil {
			e.committed()
			for _, op := range batch {
				op.done <- nil
			}
			return
		}
	} else {
		e.wc.rollbackTx()
	}
	if len(batch) == 1 {
		first.done <- err
		return
	}
	for _, op := range batch {
		errs, err := e.runOps([]*writeOp{op})
		if err == nil {
			err = errs[0]
		}
		op.done <- err
	}
}

// nextOp takes the next queued op, yielding the processor up to maxYields
// times while there is none; nil: the queue stayed empty.
func (e *Engine) nextOp() *writeOp {
	for yields := 0; ; yields++ {
		select {
		case op := <-e.ops:
			return op
		default:
		}
		if yields == maxYields {
			return nil
		}
		runtime.Gosched()
	}
}

// maxYields bounds the yields of the writer before a commit.
const maxYields = 2

// committed counts a commit and tells the checkpointer.
func (e *Engine) committed() {
	e.commits.Add(1)
	e.ckpt.wrote()
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
	e.committed()
	return errs, nil
}
