-- +goose Up
-- Why a recording ended (meta.Recording.EndReason): hangup, stopped,
-- duration, inactivity, finish-digit, failed, or interrupted (its node
-- stopped or was lost while it recorded, and the row was settled from its
-- file); '' on rows written before it was kept. Ozeki's RecordCompleted
-- carries it as its Reason, and is queued with the final row (FinalRows):
-- a restart or another node that settles the row sends it from the row,
-- not from the lost process's memory. deleted_recordings has every column
-- of recordings (recCols). (00013 is left unused.)
ALTER TABLE recordings ADD COLUMN end_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE deleted_recordings ADD COLUMN end_reason TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE deleted_recordings DROP COLUMN end_reason;
ALTER TABLE recordings DROP COLUMN end_reason;
