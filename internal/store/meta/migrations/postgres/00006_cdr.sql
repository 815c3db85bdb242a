-- +goose Up
-- One call detail record per call leg (channel; its legs share the call's sid), written when it ends; answer_time
-- is NULL for a call that was never answered.
CREATE TABLE cdr (
    sid          TEXT             NOT NULL,
    account_sid  TEXT             NOT NULL DEFAULT '',
    call_id      TEXT             NOT NULL DEFAULT '',
    channel_id   TEXT             PRIMARY KEY,
    from_number  TEXT             NOT NULL DEFAULT '',
    to_number    TEXT             NOT NULL DEFAULT '',
    direction    TEXT             NOT NULL DEFAULT 'inbound',
    status       TEXT             NOT NULL DEFAULT 'completed',
    start_time   TIMESTAMPTZ      NOT NULL,
    answer_time  TIMESTAMPTZ,
    end_time     TIMESTAMPTZ      NOT NULL,
    duration     DOUBLE PRECISION NOT NULL DEFAULT 0,
    billsec      DOUBLE PRECISION NOT NULL DEFAULT 0,
    cause        INTEGER          NOT NULL DEFAULT 0,
    cause_text   TEXT             NOT NULL DEFAULT '',
    rtp_received BIGINT           NOT NULL DEFAULT 0,
    rtp_lost     BIGINT           NOT NULL DEFAULT 0,
    jitter_ms    DOUBLE PRECISION NOT NULL DEFAULT 0,
    node         TEXT             NOT NULL DEFAULT ''
);
CREATE INDEX cdr_account_start ON cdr (account_sid, start_time);
CREATE INDEX cdr_sid ON cdr (sid);

-- +goose Down
DROP INDEX cdr_sid;
DROP INDEX cdr_account_start;
DROP TABLE cdr;
