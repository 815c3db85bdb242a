-- +goose Up
-- Webhooks across a node's death: a node claims the outbox rows it is
-- delivering for a while (claimed_by, claim_until), and says it is alive
-- (webhook_nodes.seen). Another node takes over the pending rows of a node
-- not seen for a while; a claim that has not expired is never taken, so a
-- live node's deliveries are never doubled.
ALTER TABLE webhook_outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_outbox ADD COLUMN claim_until TIMESTAMPTZ;
CREATE TABLE webhook_nodes (
    node TEXT        PRIMARY KEY,
    seen TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (next_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX webhook_outbox_pending;
DROP TABLE webhook_nodes;
ALTER TABLE webhook_outbox DROP COLUMN claim_until;
ALTER TABLE webhook_outbox DROP COLUMN claimed_by;
