-- +goose Up
-- Orders: one row per merchant order. Amounts are bigint minor units.
CREATE TABLE orders (
    order_id     text PRIMARY KEY,
    amount       bigint NOT NULL CHECK (amount > 0),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    country      text NOT NULL,
    method       text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    buyer        jsonb NOT NULL DEFAULT '{}',
    return_urls  jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL CHECK (status IN ('pending','paid','partially_refunded','refunded','closed')),
    paid_attempt text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    paid_at      timestamptz,
    CHECK ((status = 'pending' OR status = 'closed') = (paid_attempt IS NULL))
);

-- Attempts: one row per transaction code (a try to pay at one channel).
CREATE TABLE attempts (
    transaction_code text PRIMARY KEY,
    order_id         text NOT NULL REFERENCES orders (order_id),
    channel          text NOT NULL,
    amount           bigint NOT NULL CHECK (amount > 0),
    currency         text NOT NULL,
    status           text NOT NULL CHECK (status IN ('created','pending','paid','failed','expired')),
    psp_reference    text NOT NULL DEFAULT '',
    pay_url          text NOT NULL DEFAULT '',
    token            text NOT NULL DEFAULT '',
    form             jsonb,
    review           text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    session_at       timestamptz,
    expires_at       timestamptz,
    paid_at          timestamptz
);
CREATE INDEX attempts_order ON attempts (order_id, created_at);
CREATE INDEX attempts_open ON attempts (created_at) WHERE status IN ('created', 'pending');
CREATE INDEX attempts_review ON attempts (updated_at) WHERE review <> '';

-- The payinit inbox: one row per consumed pay-request message, so a
-- redelivered message resumes its plan instead of minting another attempt.
CREATE TABLE pay_requests (
    message_id       text PRIMARY KEY,
    order_id         text NOT NULL,
    body             bytea NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('accepted','rejected')),
    reason           text NOT NULL DEFAULT '',
    transaction_code text REFERENCES attempts (transaction_code),
    received_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pay_requests_order ON pay_requests (order_id);

-- Every callback (and status probe) as received: evidence, whatever its fate.
CREATE TABLE callbacks (
    id               bigserial PRIMARY KEY,
    message_id       text NOT NULL UNIQUE,
    channel          text NOT NULL,
    kind             text NOT NULL,
    received_at      timestamptz NOT NULL,
    raw              bytea NOT NULL,
    transaction_code text,
    psp_reference    text,
    psp_event_id     text,
    notified_status  text,
    notified_amount  bigint,
    confirmed_status text,
    outcome          text,
    rejected         text NOT NULL DEFAULT '',
    processed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX callbacks_attempt ON callbacks (transaction_code);

-- Every request to a PSP and its answer, secrets masked.
CREATE TABLE psp_exchanges (
    id               bigserial PRIMARY KEY,
    channel          text NOT NULL,
    operation        text NOT NULL,
    order_id         text,
    transaction_code text,
    method           text NOT NULL,
    url              text NOT NULL,
    request_body     text NOT NULL DEFAULT '',
    status_code      int,
    response_body    text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT '',
    started_at       timestamptz NOT NULL,
    duration_ms      double precision NOT NULL
);
CREATE INDEX psp_exchanges_attempt ON psp_exchanges (transaction_code);

-- The transactional outbox. event_id is deterministic per fact, so the
-- unique index makes a second emission of one fact impossible.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    topic        text NOT NULL,
    key          text NOT NULL,
    type         text NOT NULL,
    payload      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Wake the relay when events are written (one notification per statement),
-- and waiters on an order when the order or one of its attempts changes.
-- +goose StatementBegin
CREATE FUNCTION paygate_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('paygate_outbox', '');
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION paygate_notify_outbox();

-- +goose StatementBegin
CREATE FUNCTION paygate_notify_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('paygate_order', NEW.order_id);
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER orders_notify AFTER INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION paygate_notify_order();
CREATE TRIGGER attempts_notify AFTER INSERT OR UPDATE ON attempts
    FOR EACH ROW EXECUTE FUNCTION paygate_notify_order();

-- +goose Down
DROP TABLE outbox, psp_exchanges, callbacks, pay_requests, attempts, orders;
DROP FUNCTION paygate_notify_outbox, paygate_notify_order;
