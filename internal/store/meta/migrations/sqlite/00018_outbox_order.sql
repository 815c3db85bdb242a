-- +goose Up
-- Notifications delivered in order: the rows of one order_key (a Twilio
-- recording's status callbacks, "RecordingStatusCallback:<Sid>") are
-- delivered one at a time, oldest (lowest id) first: a row is not claimed
-- while an older row of its key is pending (being delivered, or waiting
-- for its retry). '' orders nothing (every other notification).
ALTER TABLE webhook_outbox ADD COLUMN order_key TEXT NOT NULL DEFAULT '';
CREATE INDEX webhook_outbox_order ON webhook_outbox (order_key, id) WHERE status = 'pending' AND order_key <> '';

-- +goose Down
DROP INDEX webhook_outbox_order;
ALTER TABLE webhook_outbox DROP COLUMN order_key;
