-- +goose Up
-- The users a recording belongs to (its comma-separated owners, issue 18's
-- user filter), one row per user, so that "this user's recordings, newest
-- first" is a range scan of (user_uuid, account_sid, date_created, sid)
-- instead of a scan of the account's recordings in date order. Live
-- recordings have theirs in recording_owners, soft-deleted ones in
-- deleted_recording_owners. Triggers keep both in step with the owners,
-- date_created and existence of the rows, whoever writes them (put,
-- delete, soft-delete, purge). Times are INTEGER microseconds since the
-- Unix epoch (UTC), as in recordings.
--
-- The owners are split with json_each over '["a","b"]' made from 'a,b'
-- (SQLite has no split, and no WITH in triggers): '\' and '"' are escaped
-- first; the store refuses owners with control characters.
CREATE TABLE recording_owners (
    user_uuid    TEXT    NOT NULL,
    account_sid  TEXT    NOT NULL,
    date_created INTEGER NOT NULL,
    sid          TEXT    NOT NULL,
    PRIMARY KEY (user_uuid, account_sid, date_created, sid)
) WITHOUT ROWID;
CREATE INDEX recording_owners_sid ON recording_owners (sid);

CREATE TABLE deleted_recording_owners (
    user_uuid    TEXT    NOT NULL,
    account_sid  TEXT    NOT NULL,
    date_created INTEGER NOT NULL,
    sid          TEXT    NOT NULL,
    PRIMARY KEY (user_uuid, account_sid, date_created, sid)
) WITHOUT ROWID;
CREATE INDEX deleted_recording_owners_sid ON deleted_recording_owners (sid);

-- +goose StatementBegin
CREATE TRIGGER recordings_owners_insert AFTER INSERT ON recordings WHEN NEW.owners <> '' BEGIN
    INSERT OR IGNORE INTO recording_owners (user_uuid, account_sid, date_created, sid)
    SELECT DISTINCT value, NEW.account_sid, NEW.date_created, NEW.sid
    FROM json_each('["' || replace(replace(replace(NEW.owners, '\', '\\'), '"', '\"'), ',', '","') || '"]')
    WHERE value <> '';
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER recordings_owners_update AFTER UPDATE OF owners, date_created, account_sid ON recordings
WHEN OLD.owners IS NOT NEW.owners OR OLD.date_created IS NOT NEW.date_created OR OLD.account_sid IS NOT NEW.account_sid BEGIN
    DELETE FROM recording_owners WHERE sid = OLD.sid;
    INSERT OR IGNORE INTO recording_owners (user_uuid, account_sid, date_created, sid)
    SELECT DISTINCT value, NEW.account_sid, NEW.date_created, NEW.sid
    FROM json_each('["' || replace(replace(replace(NEW.owners, '\', '\\'), '"', '\"'), ',', '","') || '"]')
    WHERE value <> '' AND NEW.owners <> '';
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER recordings_owners_delete AFTER DELETE ON recordings WHEN OLD.owners <> '' BEGIN
    DELETE FROM recording_owners WHERE sid = OLD.sid;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER deleted_recordings_owners_insert AFTER INSERT ON deleted_recordings WHEN NEW.owners <> '' BEGIN
    INSERT OR IGNORE INTO deleted_recording_owners (user_uuid, account_sid, date_created, sid)
    SELECT DISTINCT value, NEW.account_sid, NEW.date_created, NEW.sid
    FROM json_each('["' || replace(replace(replace(NEW.owners, '\', '\\'), '"', '\"'), ',', '","') || '"]')
    WHERE value <> '';
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER deleted_recordings_owners_update AFTER UPDATE OF owners, date_created, account_sid ON deleted_recordings
WHEN OLD.owners IS NOT NEW.owners OR OLD.date_created IS NOT NEW.date_created OR OLD.account_sid IS NOT NEW.account_sid BEGIN
    DELETE FROM deleted_recording_owners WHERE sid = OLD.sid;
    INSERT OR IGNORE INTO deleted_recording_owners (user_uuid, account_sid, date_created, sid)
    SELECT DISTINCT value, NEW.account_sid, NEW.date_created, NEW.sid
    FROM json_each('["' || replace(replace(replace(NEW.owners, '\', '\\'), '"', '\"'), ',', '","') || '"]')
    WHERE value <> '' AND NEW.owners <> '';
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER deleted_recordings_owners_delete AFTER DELETE ON deleted_recordings WHEN OLD.owners <> '' BEGIN
    DELETE FROM deleted_recording_owners WHERE sid = OLD.sid;
END;
-- +goose StatementEnd

-- The rows there already.
INSERT OR IGNORE INTO recording_owners (user_uuid, account_sid, date_created, sid)
SELECT DISTINCT j.value, r.account_sid, r.date_created, r.sid
FROM recordings AS r, json_each('["' || replace(replace(replace(r.owners, '\', '\\'), '"', '\"'), ',', '","') || '"]') AS j
WHERE r.owners <> '' AND j.value <> '';
INSERT OR IGNORE INTO deleted_recording_owners (user_uuid, account_sid, date_created, sid)
SELECT DISTINCT j.value, r.account_sid, r.date_created, r.sid
FROM deleted_recordings AS r, json_each('["' || replace(replace(replace(r.owners, '\', '\\'), '"', '\"'), ',', '","') || '"]') AS j
WHERE r.owners <> '' AND j.value <> '';

-- +goose Down
DROP TRIGGER deleted_recordings_owners_delete;
DROP TRIGGER deleted_recordings_owners_update;
DROP TRIGGER deleted_recordings_owners_insert;
DROP TRIGGER recordings_owners_delete;
DROP TRIGGER recordings_owners_update;
DROP TRIGGER recordings_owners_insert;
DROP TABLE deleted_recording_owners;
DROP TABLE recording_owners;
