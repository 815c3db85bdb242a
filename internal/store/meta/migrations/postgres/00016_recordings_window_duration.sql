-- +goose Up
-- A date window sorted by duration (Restcomm's StartTime/EndTime with
-- SortBy=Duration): the window's (duration, sid) in this index alone are
-- sorted and cut to the page, and only the page's rows are read from the
-- table (ListRecordings' deferred sort). Without it every row of the
-- window was read to be sorted: on a cold cache one random read each
-- (rows arrive in date order across accounts). (00013 is left unused.)
CREATE INDEX recordings_account_created_duration ON recordings (account_sid, date_created, duration, sid);

-- The list's COUNT (the page's total) and the offsets are index-only scans
-- that read a row's table page unless the page is marked all-visible,
-- which a vacuum does. Autovacuum vacuums a table for its inserts after
-- 1,000 + 20 % of its rows: at 1M rows the newest 200,000 (2,000 of each of
-- 100 accounts, one table page each, since rows arrive interleaved over
-- the accounts) are read from the table by every count of their account
-- (measured: 500 table pages per count at 50,000 rows since the vacuum).
-- After every 10,000 instead; such a vacuum reads only the pages not yet
-- all-visible (0.6 s for 50,000 rows at 1M, no index scans; RESULTS.md).
ALTER TABLE recordings SET (autovacuum_vacuum_insert_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE recording_owners SET (autovacuum_vacuum_insert_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0);

-- +goose Down
ALTER TABLE recording_owners RESET (autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor);
ALTER TABLE recordings RESET (autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor);
DROP INDEX recordings_account_created_duration;
