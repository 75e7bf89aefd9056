-- The attempt in flight is recorded on its delivery row (counted in
-- attempts, with its due and start times) in the transaction that claims
-- it; its attempts row is written whole, once its outcome is known (or as
-- interrupted, when the process stopped during it).
ALTER TABLE deliveries ADD COLUMN attempt_due_at INTEGER;
ALTER TABLE deliveries ADD COLUMN attempt_started_at INTEGER;
