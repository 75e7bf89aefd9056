-- Tasks are listed newest first by seq, which follows created_at: the index
-- on created_at only cost a page per commit.
DROP INDEX tasks_created;
