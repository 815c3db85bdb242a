-- +goose Up
-- A recording's completeness (meta.Quality): packets expected, received,
-- lost, late and duplicated, the silence inserted for loss, jitter,
-- recorded time over call time and the paused intervals, as one JSON
-- document; '' for rows made before it was measured. deleted_recordings
-- has every column of recordings, so it gets it too.
ALTER TABLE recordings ADD COLUMN quality TEXT NOT NULL DEFAULT '';
ALTER TABLE deleted_recordings ADD COLUMN quality TEXT NOT NULL DEFAULT '';
-- A recording paused on its call is listed as paused (Twilio's status); the
-- reconciler finds those of its node as it finds those in progress.
CREATE INDEX recordings_paused ON recordings (node, name) WHERE status = 'paused';

-- +goose Down
DROP INDEX recordings_paused;
ALTER TABLE deleted_recordings DROP COLUMN quality;
ALTER TABLE recordings DROP COLUMN quality;
