-- +goose Up
-- Where a recording's status goes (meta.StatusCallback: Twilio's
-- RecordingStatusCallback URL, method and events, the media URL base and
-- the track), as one JSON document; '' for a recording without one. It is
-- kept in the shared catalog so that the node that settles the recordings
-- of a lost node sends their failed callback: the callback lived only in
-- the lost node's memory before. Only live recordings need it, so
-- deleted_recordings does not get it. (00013 is left unused.)
ALTER TABLE recordings ADD COLUMN status_callback TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE recordings DROP COLUMN status_callback;
