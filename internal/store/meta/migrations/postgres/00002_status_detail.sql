-- +goose Up
-- status_detail: why a recording failed (or how its row was settled), in
-- words; empty when there is nothing to say.
ALTER TABLE recordings ADD COLUMN status_detail TEXT NOT NULL DEFAULT '';
-- node: the node that makes the recording (its entity id), so that a node
-- settles only its own rows left in progress when several share a catalog.
ALTER TABLE recordings ADD COLUMN node TEXT NOT NULL DEFAULT '';
-- The reconciler looks for a node's rows left in progress; there are few.
CREATE INDEX recordings_in_progress ON recordings (node, name) WHERE status = 'in-progress';

-- +goose Down
DROP INDEX recordings_in_progress;
ALTER TABLE recordings DROP COLUMN node;
ALTER TABLE recordings DROP COLUMN status_detail;
