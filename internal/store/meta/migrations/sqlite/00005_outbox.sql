-- +goose Up
-- The webhook outbox: every outgoing notification is a row until it is
-- delivered or given up, so a receiver that is down or a restart loses
-- nothing. Times are INTEGER microseconds since the Unix epoch (UTC).
CREATE TABLE webhook_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    node         TEXT    NOT NULL DEFAULT '',
    kind         TEXT    NOT NULL DEFAULT '',
    call_id      TEXT    NOT NULL DEFAULT '',
    url          TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    last_error   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (node, next_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX webhook_outbox_due;
DROP TABLE webhook_outbox;
