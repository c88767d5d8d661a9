-- `auth-server migrate` (issue 19): how far the copy of an older store's
-- audit trail has come, written in the same transaction as each batch of
-- events, so a run stopped anywhere resumes after the last batch committed
-- and never copies an event twice. The other tables are copied by upserts,
-- which a second run repeats without changing anything.
CREATE TABLE migration_progress (
    step   text PRIMARY KEY,
    cursor text NOT NULL
);
