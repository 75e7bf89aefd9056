// Package sender is callbin's callback engine: tasks, the callback payload,
// a durable delivery queue in its own SQLite file, the retry policy, the
// clock, and two transports (HTTP and e-mail over SMTP).
//
// It implements the "Sender" section of the SPEC: the task API under /v1
// (create, read, list, complete, audit, recall, cancel, retry, callbacks
// log), the profile under /api/v1/profile, the callback contract (JSON
// {task_id, status, response, task}, the scale-callback-auth header,
// Standard Webhooks signatures, an idempotency key) and `callbin trigger`.
//
// The package imports no other callbin package: it could ship alone. The
// process wires it with a *mux.Router (Engine.Register), an optional
// Publisher for live events, and a Clock (NewScaledClock for --time-scale).
//
// # Behaviour worth knowing
//
//   - Task types: "categorization" (attachment_type, attachment, categories,
//     optional allow_multiple; validated) and "generic" (any params). Any
//     other type is refused as unknown. Type-specific fields may be sent at
//     the top level of the request or inside "params"; both end up in params.
//   - A refused creation (unknown type, bad params) answers 400 naming the
//     field; if the request had a usable callback_url (or the profile has a
//     default), a task in status "error" is stored, its id is added to the
//     400 body as task_id, and an error callback is queued. A bad
//     callback_url, a body that is not a JSON object, or a reused unique_id
//     (409) store nothing and send nothing.
//   - Every callback is a delivery row (task, event, target, payload,
//     attempts, next attempt time, state). An attempt is counted and its
//     start (due and start times) recorded on the delivery row, committed,
//     before it is sent: a crash mid-attempt counts it, and the next Open
//     records it as interrupted and resumes the delivery at once
//     (at-least-once, never more attempts than the policy allows). The
//     attempt's row in the callbacks log is written whole with its outcome,
//     in the same transaction as the delivery's next state.
//   - A delivery queued while a worker is free (and no due delivery waits
//     for one) is claimed in the transaction that queues it and handed to
//     that worker after the commit. Otherwise a scheduler sleeps until the
//     next due time or a wake-up and claims due rows, oldest first, for free
//     workers.
//   - CompleteTask of a task created recently by this engine and unchanged
//     since builds the callback payload from the copy kept at creation,
//     before the write; the write completes the task only if the row is
//     still pending and unreviewed (else the task is completed as found).
//   - All writes go through one writer goroutine that owns the one write
//     connection (its statements prepared on it once) and commits the
//     operations of concurrent callers together (group commit): an
//     operation queued while the ones before it run joins their
//     transaction, which commits once the queue is empty. It never
//     checkpoints: a background connection copies the WAL back into the
//     database file (PASSIVE, at most every 250 ms, only after writes), and
//     Close ends with a TRUNCATE checkpoint.
//   - callback_succeeded describes the task's latest delivery: absent while
//     it is undecided, true at its first 2xx (with callback_succeeded_at),
//     false once it has failed for good (callback_succeeded_at null). It is
//     read from that delivery (the task_view of the schema), not written
//     into the task row, and the task's updated_at includes its decision.
//   - The retry after attempt n is due Delays[n-1] (± jitter) after attempt
//     n ended; interrupted attempts are due again at once.
//   - webhook-timestamp is wall-clock time even on a scaled clock, so
//     receivers can verify signatures with their usual tolerance.
package sender
