-- +goose Up
-- Users (wazo-confd's users): a tenant, an extension in a context, the
-- digest credentials of their phone, and the recording flags of Wazo's
-- call recording. Times are INTEGER microseconds since the Unix epoch (UTC).
CREATE TABLE users (
    id                            INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid                          TEXT    NOT NULL,
    tenant_uuid                   TEXT    NOT NULL,
    firstname                     TEXT    NOT NULL DEFAULT '',
    lastname                      TEXT    NOT NULL DEFAULT '',
    email                         TEXT    NOT NULL DEFAULT '',
    username                      TEXT    NOT NULL DEFAULT '',
    password_hash                 TEXT    NOT NULL DEFAULT '',
    mobile_phone_number           TEXT    NOT NULL DEFAULT '',
    exten                         TEXT    NOT NULL DEFAULT '',
    context                       TEXT    NOT NULL DEFAULT 'default',
    sip_username                  TEXT    NOT NULL DEFAULT '',
    sip_password                  TEXT    NOT NULL DEFAULT '',
    call_record_outgoing_external INTEGER NOT NULL DEFAULT 0 CHECK (call_record_outgoing_external IN (0, 1)),
    call_record_outgoing_internal INTEGER NOT NULL DEFAULT 0 CHECK (call_record_outgoing_internal IN (0, 1)),
    call_record_incoming_external INTEGER NOT NULL DEFAULT 0 CHECK (call_record_incoming_external IN (0, 1)),
    call_record_incoming_internal INTEGER NOT NULL DEFAULT 0 CHECK (call_record_incoming_internal IN (0, 1)),
    online_call_record            INTEGER NOT NULL DEFAULT 0 CHECK (online_call_record IN (0, 1)),
    created                       INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_uuid         ON users (uuid);
CREATE UNIQUE INDEX users_exten        ON users (context, exten) WHERE exten <> '';
CREATE UNIQUE INDEX users_sip_username ON users (sip_username) WHERE sip_username <> '';
CREATE UNIQUE INDEX users_username     ON users (username) WHERE username <> '';
CREATE INDEX users_tenant              ON users (tenant_uuid, id);

-- Feature extensions (wazo-confd's /extensions/features): a code such as
-- *26 in context xivo-features owned by a feature such as callrecord. An
-- exten is used by one feature at most. The rows are seeded by the store.
CREATE TABLE feature_extensions (
    uuid    TEXT    NOT NULL PRIMARY KEY,
    context TEXT    NOT NULL DEFAULT 'xivo-features',
    exten   TEXT    NOT NULL,
    feature TEXT    NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
);
CREATE UNIQUE INDEX feature_extensions_feature ON feature_extensions (feature);
CREATE UNIQUE INDEX feature_extensions_exten   ON feature_extensions (exten);

-- wazo-auth tokens, kept as the SHA-256 of the token (a database leak
-- reveals no usable token), shared by every node of a catalog.
CREATE TABLE auth_tokens (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    auth_id     TEXT    NOT NULL,
    user_uuid   TEXT    NOT NULL DEFAULT '',
    tenant_uuid TEXT    NOT NULL DEFAULT '',
    is_admin    INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    acl         TEXT    NOT NULL DEFAULT '[]',
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX auth_tokens_expires ON auth_tokens (expires_at);

-- +goose Down
DROP TABLE auth_tokens;
DROP TABLE feature_extensions;
DROP TABLE users;
