-- +goose Up
-- An ARI recording name in use: claimed by the node that records it, from its start until its catalog row is
-- final, so that nodes sharing the catalog never record under one name at once (the primary key decides).
CREATE TABLE recording_claims (
    name       TEXT        PRIMARY KEY,
    node       TEXT        NOT NULL,
    claimed_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE recording_claims;
