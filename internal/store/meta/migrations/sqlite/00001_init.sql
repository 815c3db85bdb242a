-- +goose Up
-- Times are INTEGER microseconds since the Unix epoch (UTC).
CREATE TABLE accounts (
    sid        TEXT    NOT NULL PRIMARY KEY,
    auth_token TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created    INTEGER NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1))
);
CREATE UNIQUE INDEX accounts_name ON accounts (name);
CREATE UNIQUE INDEX accounts_default ON accounts (is_default) WHERE is_default = 1;

CREATE TABLE recordings (
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
    api_version   TEXT    NOT NULL DEFAULT '2012-04-24'
);
-- List queries: filters on account_sid (+ call_sid, date_created window),
-- sorted by date_created / duration / call_sid with sid breaking ties; the
-- trailing sid makes keyset paging (AfterSid) a range scan.
CREATE INDEX recordings_account_created  ON recordings (account_sid, date_created, sid);
CREATE INDEX recordings_account_call     ON recordings (account_sid, call_sid, date_created, sid);
CREATE INDEX recordings_account_duration ON recordings (account_sid, duration, sid);
CREATE UNIQUE INDEX recordings_name      ON recordings (name) WHERE name <> '';

-- +goose Down
DROP TABLE recordings;
DROP TABLE accounts;
