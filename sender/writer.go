package sender

import (
	"context"
	"fmt"
)

// writeOp is one unit of work for the writer: fn runs inside a transaction
// shared with other ops (under its own savepoint), and done gets its result
// once the transaction has committed.
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
func (e *Engine) runWriter() {
	defer close(e.writerDone)
	for {
		var first *writeOp
		select {
		case first = <-e.ops:
		case <-e.stopWriter:
			return
		}
		batch := []*writeOp{first}
	more:
		for len(batch) < maxBatch {
			select {
			case op := <-e.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		e.commitBatch(batch)
	}
}

func (e *Engine) commitBatch(batch []*writeOp) {
	ctx := context.Background()
	fail := func(err error) {
		for _, op := range batch {
			op.done <- err
		}
	}
	tx, err := e.begin(ctx)
	if err != nil {
		fail(fmt.Errorf("begin write: %w", err))
		return
	}
	defer tx.Rollback()
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		errs[0] = batch[0].fn(tx)
		if errs[0] != nil {
			tx.Rollback()
			batch[0].done <- errs[0]
			return
		}
	} else {
		for i, op := range batch {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
				fail(fmt.Errorf("savepoint: %w", err))
				return
			}
			errs[i] = op.fn(tx)
			if errs[i] != nil {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO op"); err != nil {
					fail(fmt.Errorf("rollback to savepoint: %w", err))
					return
				}
			}
			if _, err := tx.ExecContext(ctx, "RELEASE op"); err != nil {
				fail(fmt.Errorf("release savepoint: %w", err))
				return
			}
		}
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("commit: %w", err))
		return
	}
	for i, op := range batch {
		op.done <- errs[i]
	}
}
