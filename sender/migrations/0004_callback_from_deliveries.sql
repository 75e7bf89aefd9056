-- A task's callback_succeeded and callback_succeeded_at describe its latest
-- delivery, so they are read from it instead of being written into the task
-- row at every outcome: succeeded is true (at the time it was decided),
-- failed is false, pending or in flight is undecided (null), as is a task
-- without deliveries. The task's updated_at includes that decision time.
-- The tasks columns of the same names are no longer read.
CREATE VIEW task_view AS
SELECT t.seq, t.task_id, t.type, t.instruction, t.params, t.status, t.created_at,
    CASE WHEN d.state IN ('succeeded', 'failed') AND d.updated_at > t.updated_at
        THEN d.updated_at ELSE t.updated_at END AS updated_at,
    t.completed_at, t.callback_url,
    CASE d.state WHEN 'succeeded' THEN 1 WHEN 'failed' THEN 0 END AS callback_succeeded,
    CASE d.state WHEN 'succeeded' THEN d.updated_at END AS callback_succeeded_at,
    t.response, t.metadata, t.unique_id, t.is_test, t.customer_review_status,
    t.customer_review_comments, t.prior_responses
FROM tasks t LEFT JOIN deliveries d
    ON d.id = (SELECT MAX(id) FROM deliveries WHERE task_id = t.task_id);
