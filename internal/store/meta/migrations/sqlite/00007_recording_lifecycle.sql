-- +goose Up
-- Deleted recordings, as Twilio deletes them: the media goes at once, the
-- row moves here and is kept for the retention time (catalog.deleted_retention),
-- listed only when asked (IncludeSoftDeleted). It has every column of
-- recordings (recCols), plus deleted_at. A table of its own keeps the
-- list and count queries of live rows on their indexes as they were.
-- Times are INTEGER microseconds since the Unix epoch (UTC).
CREATE TABLE deleted_recordings (
    sid           TEXT    NOT NULL PRIMARY KEY,
    account_sid   TEXT    NOT NULL REFERENCES accounts (sid),
    call_sid      TEXT    NOT NULL DEFAULT '',
    date_created  INTEGER NOT NULL,
    date_updated  INTEGER NOT NULL,
    start_time    INTEGER,
    duration      REAL    NOT NULL DEFAULT 0,
    channels      INTEGER NOT NULL DEFAULT 0,
    format        TEXT    NOT NULL DEFAULT '',
    size          INTEGER NOT NULL DEFAULT 0,
    sha256        TEXT    NOT NULL DEFAULT '',
    source        TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL DEFAULT '',
    name          TEXT    NOT NULL DEFAULT '',
    file_path     TEXT    NOT NULL DEFAULT '',
    s3_uri        TEXT    NOT NULL DEFAULT '',
    caller_number TEXT    NOT NULL DEFAULT '',
    called_number TEXT    NOT NULL DEFAULT '',
    api_version   TEXT    NOT NULL DEFAULT '2012-04-24',
    status_detail TEXT    NOT NULL DEFAULT '',
    node          TEXT    NOT NULL DEFAULT '',
    tenant_uuid   TEXT    NOT NULL DEFAULT '',
    direction     TEXT    NOT NULL DEFAULT '',
    owners        TEXT    NOT NULL DEFAULT '',
    deleted_at    INTEGER NOT NULL
);
CREATE INDEX deleted_recordings_account_created ON deleted_recordings (account_sid, date_created, sid);
CREATE INDEX deleted_recordings_deleted_at ON deleted_recordings (deleted_at);

-- Who deleted what, and when: kept after the row itself is purged.
CREATE TABLE recording_audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    account_sid   TEXT    NOT NULL,
    recording_sid TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    actor         TEXT    NOT NULL DEFAULT '',
    api           TEXT    NOT NULL DEFAULT '',
    remote        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX recording_audit_recording ON recording_audit (account_sid, recording_sid, id);

-- The From/To filters: by caller and callee number within an account.
CREATE INDEX recordings_account_caller ON recordings (account_sid, caller_number, date_created, sid);
CREATE INDEX recordings_account_called ON recordings (account_sid, called_number, date_created, sid);

-- +goose Down
DROP INDEX recordings_account_called;
DROP INDEX recordings_account_caller;
DROP TABLE recording_audit;
DROP TABLE deleted_recordings;
