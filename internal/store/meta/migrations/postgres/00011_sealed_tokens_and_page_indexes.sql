-- +goose Up
-- Auth tokens at rest (issue 16): token_hash (SHA-256, hex) authenticates,
-- token_enc (AES-256-GCM under the token key, which is not in the
-- database) gives the token back for signing X-Twilio-Signature. The
-- plaintext auth_token column is emptied by the store when it opens (it
-- needs the key, which a migration does not have).
ALTER TABLE accounts ADD COLUMN token_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN token_enc TEXT NOT NULL DEFAULT '';

-- The recordings page's status and source filters (issue 18), newest
-- first, paged by key.
CREATE INDEX recordings_account_status ON recordings (account_sid, status, date_created, sid);
CREATE INDEX recordings_account_source ON recordings (account_sid, source, date_created, sid);

-- +goose Down
DROP INDEX recordings_account_source;
DROP INDEX recordings_account_status;
ALTER TABLE accounts DROP COLUMN token_enc;
ALTER TABLE accounts DROP COLUMN token_hash;
