-- +goose Up
-- A recording's completeness (meta.Quality): packets expected, received,
-- lost, late and duplicated, the silence inserted for loss, jitter,
-- recorded time over call time and the paused intervals, as one JSON
-- document; '' for rows made before it was measured. deleted_recordings
-- has every column of recordings, so it gets it too.
ALTER TABLE recordings ADD COLUMN quality TEXT NOT NULL DEFAULT '';
ALTER TABLE deleted_recordings ADD COLUMN quality TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE deleted_recordings DROP COLUMN quality;
ALTER TABLE recordings DROP COLUMN quality;
