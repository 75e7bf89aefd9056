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
package sender
