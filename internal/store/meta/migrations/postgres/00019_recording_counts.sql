-- +goose Up
-- The number of recordings of an account (the list's `total` without a
-- filter), kept by triggers, so that a first page or a deep page does not
-- count the account's rows in an index: ~240 leaf pages per 10,000 rows,
-- one random read each on a cold cache (RESULTS.md, cat17). live counts
-- recordings, deleted counts deleted_recordings. An account's count is the
-- sum over its shards: a transaction adds to the shard of its connection
-- (pg_backend_pid() % 16), so that concurrent writers of one account do
-- not wait for each other's row lock until they commit. The triggers run
-- once per statement (transition tables) and take the rows' locks in
-- account order, so that two multi-account batches cannot deadlock on them.
-- A recording never changes account (the upsert updates a row only within
-- its account), so only inserts and deletes change a count.
CREATE TABLE recording_counts (
    account_sid TEXT COLLATE "C" NOT NULL,
    shard       SMALLINT         NOT NULL,
    live        BIGINT           NOT NULL DEFAULT 0,
    deleted     BIGINT           NOT NULL DEFAULT 0,
    PRIMARY KEY (account_sid, shard)
);

-- +goose StatementBegin
CREATE FUNCTION recording_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'recordings' THEN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO recording_counts AS c (account_sid, shard, live)
            SELECT account_sid, pg_backend_pid() % 16, count(*) FROM new_rows GROUP BY account_sid ORDER BY account_sid
            ON CONFLICT (account_sid, shard) DO UPDATE SET live = c.live + excluded.live;
        ELSE
            INSERT INTO recording_counts AS c (account_sid, shard, live)
            SELECT account_sid, pg_backend_pid() % 16, -count(*) FROM old_rows GROUP BY account_sid ORDER BY account_sid
            ON CONFLICT (account_sid, shard) DO UPDATE SET live = c.live + excluded.live;
        END IF;
    ELSE
        IF TG_OP = 'INSERT' THEN
            INSERT INTO recording_counts AS c (account_sid, shard, deleted)
            SELECT account_sid, pg_backend_pid() % 16, count(*) FROM new_rows GROUP BY account_sid ORDER BY account_sid
            ON CONFLICT (account_sid, shard) DO UPDATE SET deleted = c.deleted + excluded.deleted;
        ELSE
            INSERT INTO recording_counts AS c (account_sid, shard, deleted)
            SELECT account_sid, pg_backend_pid() % 16, -count(*) FROM old_rows GROUP BY account_sid ORDER BY account_sid
            ON CONFLICT (account_sid, shard) DO UPDATE SET deleted = c.deleted + excluded.deleted;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- Creating the triggers locks the tables against writes until this
-- migration commits, so the counts below miss no concurrent insert (writes
-- wait for the counts: about a second per million rows).
CREATE TRIGGER recordings_counts_insert AFTER INSERT ON recordings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recording_counts_add();
CREATE TRIGGER recordings_counts_delete AFTER DELETE ON recordings
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION recording_counts_add();
CREATE TRIGGER deleted_recordings_counts_insert AFTER INSERT ON deleted_recordings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recording_counts_add();
CREATE TRIGGER deleted_recordings_counts_delete AFTER DELETE ON deleted_recordings
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION recording_counts_add();

-- The rows there already.
INSERT INTO recording_counts (account_sid, shard, live)
SELECT account_sid, 0, count(*) FROM recordings GROUP BY account_sid;
INSERT INTO recording_counts AS c (account_sid, shard, deleted)
SELECT account_sid, 0, count(*) FROM deleted_recordings GROUP BY account_sid
ON CONFLICT (account_sid, shard) DO UPDATE SET deleted = excluded.deleted;

-- +goose Down
DROP TRIGGER deleted_recordings_counts_delete ON deleted_recordings;
DROP TRIGGER deleted_recordings_counts_insert ON deleted_recordings;
DROP TRIGGER recordings_counts_delete ON recordings;
DROP TRIGGER recordings_counts_insert ON recordings;
DROP FUNCTION recording_counts_add();
DROP TABLE recording_counts;
