-- +goose Up
-- A date window sorted by duration (Restcomm's StartTime/EndTime with
-- SortBy=Duration): the window's (duration, sid) in this index alone are
-- sorted and cut to the page, and only the page's rows are read from the
-- table (ListRecordings' deferred sort). Without it every row of the
-- window was read to be sorted: on a cold cache one random read each
-- (rows arrive in date order across accounts). (00013 is left unused.)
CREATE INDEX recordings_account_created_duration ON recordings (account_sid, date_created, duration, sid);

-- +goose Down
DROP INDEX recordings_account_created_duration;
