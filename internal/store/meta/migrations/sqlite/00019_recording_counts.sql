-- +goose Up
-- The number of recordings of an account (the list's `total` without a
-- filter), kept by triggers, so that a first page or a deep page does not
-- count the account's rows in an index: ~240 leaf pages per 10,000 rows,
-- one random read each on a cold cache (RESULTS.md, cat17). live counts
-- recordings, deleted counts deleted_recordings. One row per account
-- (SQLite has one writer at a time); the same columns as PostgreSQL's,
-- whose counts are summed over shards. A recording never changes account
-- (the upsert updates a row only within its account), so only inserts and
-- deletes change a count.
CREATE TABLE recording_counts (
    account_sid TEXT    NOT NULL,
    shard       INTEGER NOT NULL,
    live        INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_sid, shard)
) WITHOUT ROWID;

-- +goose StatementBegin
CREATE TRIGGER recordings_counts_insert AFTER INSERT ON recordings BEGIN
    INSERT OR IGNORE INTO recording_counts (account_sid, shard) VALUES (NEW.account_sid, 0);
    UPDATE recording_counts SET live = live + 1 WHERE account_sid = NEW.account_sid AND shard = 0;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER recordings_counts_delete AFTER DELETE ON recordings BEGIN
    UPDATE recording_counts SET live = live - 1 WHERE account_sid = OLD.account_sid AND shard = 0;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER deleted_recordings_counts_insert AFTER INSERT ON deleted_recordings BEGIN
    INSERT OR IGNORE INTO recording_counts (account_sid, shard) VALUES (NEW.account_sid, 0);
    UPDATE recording_counts SET deleted = deleted + 1 WHERE account_sid = NEW.account_sid AND shard = 0;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER deleted_recordings_counts_delete AFTER DELETE ON deleted_recordings BEGIN
    UPDATE recording_counts SET deleted = deleted - 1 WHERE account_sid = OLD.account_sid AND shard = 0;
END;
-- +goose StatementEnd

-- The rows there already (the migration holds the write lock: writes wait
-- for these counts, about a second per million rows).
INSERT INTO recording_counts (account_sid, shard, live)
SELECT account_sid, 0, count(*) FROM recordings GROUP BY account_sid;
INSERT INTO recording_counts (account_sid, shard, deleted)
SELECT account_sid, 0, count(*) FROM deleted_recordings WHERE true GROUP BY account_sid
ON CONFLICT (account_sid, shard) DO UPDATE SET deleted = excluded.deleted;

-- +goose Down
DROP TRIGGER deleted_recordings_counts_delete;
DROP TRIGGER deleted_recordings_counts_insert;
DROP TRIGGER recordings_counts_delete;
DROP TRIGGER recordings_counts_insert;
DROP TABLE recording_counts;
