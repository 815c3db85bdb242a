-- +goose Up
-- The users a recording belongs to (its comma-separated owners, issue 18's
-- user filter), one row per user, so that "this user's recordings, newest
-- first" is a range scan of (user_uuid, account_sid, date_created, sid)
-- instead of a scan of the account's recordings in date order. Live
-- recordings have theirs in recording_owners, soft-deleted ones in
-- deleted_recording_owners. Triggers keep both in step with the owners,
-- date_created and existence of the rows, whoever writes them (put,
-- delete, soft-delete, purge).
CREATE TABLE recording_owners (
    user_uuid    TEXT COLLATE "C" NOT NULL,
    account_sid  TEXT COLLATE "C" NOT NULL,
    date_created TIMESTAMPTZ      NOT NULL,
    sid          TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_uuid, account_sid, date_created, sid)
);
CREATE INDEX recording_owners_sid ON recording_owners (sid);

CREATE TABLE deleted_recording_owners (
    user_uuid    TEXT COLLATE "C" NOT NULL,
    account_sid  TEXT COLLATE "C" NOT NULL,
    date_created TIMESTAMPTZ      NOT NULL,
    sid          TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (user_uuid, account_sid, date_created, sid)
);
CREATE INDEX deleted_recording_owners_sid ON deleted_recording_owners (sid);

-- +goose StatementBegin
CREATE FUNCTION recording_owners_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM recording_owners WHERE sid = OLD.sid;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO recording_owners (user_uuid, account_sid, date_created, sid)
        SELECT DISTINCT u, NEW.account_sid, NEW.date_created, NEW.sid
        FROM unnest(string_to_array(NEW.owners, ',')) AS u WHERE u <> '';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION deleted_recording_owners_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM deleted_recording_owners WHERE sid = OLD.sid;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO deleted_recording_owners (user_uuid, account_sid, date_created, sid)
        SELECT DISTINCT u, NEW.account_sid, NEW.date_created, NEW.sid
        FROM unnest(string_to_array(NEW.owners, ',')) AS u WHERE u <> '';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER recordings_owners_insert AFTER INSERT ON recordings
    FOR EACH ROW WHEN (NEW.owners <> '') EXECUTE FUNCTION recording_owners_sync();
CREATE TRIGGER recordings_owners_update AFTER UPDATE OF owners, date_created, account_sid ON recordings
    FOR EACH ROW WHEN (OLD.owners IS DISTINCT FROM NEW.owners OR OLD.date_created IS DISTINCT FROM NEW.date_created
        OR OLD.account_sid IS DISTINCT FROM NEW.account_sid)
    EXECUTE FUNCTION recording_owners_sync();
CREATE TRIGGER recordings_owners_delete AFTER DELETE ON recordings
    FOR EACH ROW WHEN (OLD.owners <> '') EXECUTE FUNCTION recording_owners_sync();
CREATE TRIGGER deleted_recordings_owners_insert AFTER INSERT ON deleted_recordings
    FOR EACH ROW WHEN (NEW.owners <> '') EXECUTE FUNCTION deleted_recording_owners_sync();
CREATE TRIGGER deleted_recordings_owners_update AFTER UPDATE OF owners, date_created, account_sid ON deleted_recordings
    FOR EACH ROW WHEN (OLD.owners IS DISTINCT FROM NEW.owners OR OLD.date_created IS DISTINCT FROM NEW.date_created
        OR OLD.account_sid IS DISTINCT FROM NEW.account_sid)
    EXECUTE FUNCTION deleted_recording_owners_sync();
CREATE TRIGGER deleted_recordings_owners_delete AFTER DELETE ON deleted_recordings
    FOR EACH ROW WHEN (OLD.owners <> '') EXECUTE FUNCTION deleted_recording_owners_sync();

-- The rows there already.
INSERT INTO recording_owners (user_uuid, account_sid, date_created, sid)
SELECT DISTINCT u, r.account_sid, r.date_created, r.sid
FROM recordings AS r, unnest(string_to_array(r.owners, ',')) AS u WHERE r.owners <> '' AND u <> '';
INSERT INTO deleted_recording_owners (user_uuid, account_sid, date_created, sid)
SELECT DISTINCT u, r.account_sid, r.date_created, r.sid
FROM deleted_recordings AS r, unnest(string_to_array(r.owners, ',')) AS u WHERE r.owners <> '' AND u <> '';

-- +goose Down
DROP TRIGGER deleted_recordings_owners_delete ON deleted_recordings;
DROP TRIGGER deleted_recordings_owners_update ON deleted_recordings;
DROP TRIGGER deleted_recordings_owners_insert ON deleted_recordings;
DROP TRIGGER recordings_owners_delete ON recordings;
DROP TRIGGER recordings_owners_update ON recordings;
DROP TRIGGER recordings_owners_insert ON recordings;
DROP FUNCTION deleted_recording_owners_sync();
DROP FUNCTION recording_owners_sync();
DROP TABLE deleted_recording_owners;
DROP TABLE recording_owners;
