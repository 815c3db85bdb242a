-- +goose Up
-- 00004 added caller and callee to recordings for policy recordings, but
-- they duplicate caller_number and called_number, which the code has
-- always written and read (caller and callee stayed empty): dropped.
ALTER TABLE recordings DROP COLUMN caller;
ALTER TABLE recordings DROP COLUMN callee;

-- +goose Down
ALTER TABLE recordings ADD COLUMN caller TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN callee TEXT NOT NULL DEFAULT '';
