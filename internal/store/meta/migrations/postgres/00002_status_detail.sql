-- +goose Up
-- status_detail: why a recording failed (or how its row was settled), in
-- words; empty when there is nothing to say.
ALTER TABLE recordings ADD COLUMN status_detail TEXT NOT NULL DEFAULT '';
-- The reconciler looks for rows left in progress; there are few of them.
CREATE INDEX recordings_in_progress ON recordings (name) WHERE status = 'in-progress';

-- +goose Down
DROP INDEX recordings_in_progress;
ALTER TABLE recordings DROP COLUMN status_detail;
