-- +goose Up
-- The webhook outbox: every outgoing notification is a row until it is
-- delivered or given up, so a receiver that is down or a restart loses
-- nothing.
CREATE TABLE webhook_outbox (
    id           BIGSERIAL PRIMARY KEY,
    node         TEXT        NOT NULL DEFAULT '',
    kind         TEXT        NOT NULL DEFAULT '',
    call_id      TEXT        NOT NULL DEFAULT '',
    url          TEXT        NOT NULL,
    content_type TEXT        NOT NULL,
    body         BYTEA       NOT NULL,
    status       TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER     NOT NULL DEFAULT 0,
    next_at      TIMESTAMPTZ NOT NULL,
    created      TIMESTAMPTZ NOT NULL,
    last_error   TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (node, next_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX webhook_outbox_due;
DROP TABLE webhook_outbox;
