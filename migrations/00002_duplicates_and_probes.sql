-- +goose Up
-- Payments the buyer made that paygate must not keep: a second successful
-- attempt of a paid order (duplicate) or a success for a closed order
-- (late). Each is refunded through paygate.refund-requests.v1.
CREATE TABLE repeat_payments (
    id               bigserial PRIMARY KEY,
    order_id         text NOT NULL REFERENCES orders (order_id),
    transaction_code text NOT NULL REFERENCES attempts (transaction_code),
    channel          text NOT NULL,
    psp_reference    text NOT NULL,
    amount           bigint NOT NULL CHECK (amount > 0),
    currency         text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('duplicate_payment', 'late_payment')),
    -- refund_id is the refund request paygate published; its status is
    -- the refunds table's. Manual: a person must refund it at the PSP (a
    -- second PSP transaction under one attempt), and refund_id is ''.
    refund_id        text NOT NULL DEFAULT '',
    manual           boolean NOT NULL DEFAULT false,
    detected_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (transaction_code, psp_reference)
);
CREATE INDEX repeat_payments_order ON repeat_payments (order_id);

-- The sweeper's bookkeeping: when an open attempt is next asked about.
ALTER TABLE attempts ADD COLUMN probe_count int NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN next_probe_at timestamptz;
-- Orders the sweeper may close once they expire unpaid.
CREATE INDEX orders_pending ON orders (created_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX orders_pending;
ALTER TABLE attempts DROP COLUMN next_probe_at, DROP COLUMN probe_count;
DROP TABLE repeat_payments;
