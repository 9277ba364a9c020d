-- +goose Up
-- Refunds: one row per refund id (the requester's idempotency key),
-- whatever its fate: a request refused by validation is a failed refund
-- with its error, so that GET /v1/refunds/{id} and finance's result tell
-- the same story. No foreign keys to orders and attempts: a refused
-- request may name an order paygate never saw.
CREATE TABLE refunds (
    id               bigserial PRIMARY KEY,            -- queue order within an order
    refund_id        text NOT NULL UNIQUE,
    body_hash        bytea NOT NULL,                   -- same id + another hash = conflict
    message_id       text NOT NULL,                    -- the message that created it
    refund_ref       text UNIQUE,                      -- our reference at the PSP (NULL if never sent)
    order_id         text NOT NULL,
    transaction_code text NOT NULL DEFAULT '',
    channel          text NOT NULL DEFAULT '',
    amount           bigint NOT NULL,
    currency         text NOT NULL,
    reason           text NOT NULL DEFAULT '',
    status           text NOT NULL CHECK (status IN ('queued','calling','pending_at_psp','succeeded','failed')),
    call_status      text NOT NULL DEFAULT '' CHECK (call_status IN ('','ok','failed','unknown')),
    psp_reference    text NOT NULL DEFAULT '',         -- the PSP's id of the refund
    payment_psp_reference text NOT NULL DEFAULT '',    -- the PSP's id of the refunded payment
    error            text NOT NULL DEFAULT '',
    raw              bytea NOT NULL,                   -- the request as received
    -- Work bookkeeping: who holds the refund (lease), when to look again.
    lease            text,
    lease_until      timestamptz,
    next_at          timestamptz NOT NULL DEFAULT now(),
    polls            int NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CHECK ((status IN ('succeeded','failed')) = (finished_at IS NOT NULL))
);
CREATE INDEX refunds_order ON refunds (order_id, id);
CREATE INDEX refunds_attempt ON refunds (transaction_code);
-- What the poller looks at: refunds not final, by when they are due.
CREATE INDEX refunds_due ON refunds (next_at) WHERE status IN ('queued','calling','pending_at_psp');
-- One refund per order in flight at a time, whatever a bug might try.
CREATE UNIQUE INDEX refunds_one_in_flight ON refunds (order_id) WHERE status IN ('calling','pending_at_psp');

-- Refund requests refused because their refund id is taken by another
-- request: kept as evidence; the original is never overwritten.
CREATE TABLE refund_conflicts (
    message_id  text PRIMARY KEY,
    refund_id   text NOT NULL,
    body_hash   bytea NOT NULL,
    raw         bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Waiters on an order (GET /v1/payments?wait=) hear of its refunds too.
CREATE TRIGGER refunds_notify AFTER INSERT OR UPDATE ON refunds
    FOR EACH ROW EXECUTE FUNCTION paygate_notify_order();

-- +goose Down
DROP TABLE refund_conflicts, refunds;
