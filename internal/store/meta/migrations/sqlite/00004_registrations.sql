-- +goose Up
-- registrations: the SIP location store (RFC 3261 10.3), one row per
-- registered contact of a user, shared by the nodes using this catalog.
-- expires is microseconds since the epoch, like the other times here.
CREATE TABLE registrations (
    username   TEXT    NOT NULL,
    contact    TEXT    NOT NULL,
    expires    INTEGER NOT NULL,
    call_id    TEXT    NOT NULL DEFAULT '',
    cseq       INTEGER NOT NULL DEFAULT 0,
    source     TEXT    NOT NULL DEFAULT '',
    transport  TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    node       TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (username, contact)
);
-- Pruning deletes by expiry.
CREATE INDEX registrations_expires ON registrations (expires);
-- Recordings made by policy (Wazo's call recording): who called whom, the
-- tenant, the direction (internal, incoming, outgoing) and the users the
-- recording belongs to (comma-separated user UUIDs).
ALTER TABLE recordings ADD COLUMN caller TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN callee TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN tenant_uuid TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN direction TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN owners TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE recordings DROP COLUMN owners;
ALTER TABLE recordings DROP COLUMN direction;
ALTER TABLE recordings DROP COLUMN tenant_uuid;
ALTER TABLE recordings DROP COLUMN callee;
ALTER TABLE recordings DROP COLUMN caller;
DROP INDEX registrations_expires;
DROP TABLE registrations;
