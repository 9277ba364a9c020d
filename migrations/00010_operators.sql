-- +goose Up
-- What operators do, for the console and the operator commands
-- (docs/console.md, docs/operations.md).

-- Every operator action, whichever door it came through (the console or
-- the CLI): who, when, what, on what, and how it ended. Append-only.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- "console:<user>" or "cli:<os user>@<host>".
    actor       text NOT NULL,
    role        text NOT NULL DEFAULT '',
    -- e.g. login, logout, dlq.replay, dlq.replay_one.
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed')),
    detail      jsonb NOT NULL DEFAULT '{}',
    remote_addr text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_recent ON audit_log (at DESC);

-- One row per dead-lettered record sent back to its topic: a record is
-- replayed once, whether by `paygate dlq replay` (all of a topic) or from
-- the console (one record). record_time is the DLQ record's timestamp: a
-- topic deleted and created again starts its offsets at 0, and a row for
-- the same offset with another time is about another record.
CREATE TABLE dlq_replays (
    dlq_topic    text NOT NULL,
    partition    int NOT NULL,
    dlq_offset   bigint NOT NULL,
    record_time  timestamptz NOT NULL,
    message_id   text NOT NULL,
    -- paygate_replay_count of the record sent (1 for a first replay).
    replay_count int NOT NULL CHECK (replay_count >= 1),
    replayed_at  timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    PRIMARY KEY (dlq_topic, partition, dlq_offset)
);

-- Console sessions: the cookie carries a random token, the table its
-- SHA-256, so that a copy of the table opens no session.
CREATE TABLE console_sessions (
    token_hash   bytea PRIMARY KEY,
    username     text NOT NULL,
    role         text NOT NULL CHECK (role IN ('viewer', 'operator')),
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- +goose Down
DROP TABLE console_sessions;
DROP TABLE dlq_replays;
DROP TABLE audit_log;
