-- +goose Up
-- Operator documents, every version of every kind (the routing policy, the
-- risk rules), with who applied each, when, from where and why (audit).
-- The newest version of a kind is the one in force; a document is
-- validated before it is stored. Versions count per kind from 1: the
-- routing policy's versions stay what they were in routing_policies.
CREATE TABLE documents (
    kind       text NOT NULL CHECK (kind IN ('routing', 'risk')),
    version    bigint NOT NULL CHECK (version > 0),
    document   bytea NOT NULL,
    sha256     text NOT NULL,
    applied_by text NOT NULL,
    source     text NOT NULL DEFAULT '',
    note       text NOT NULL DEFAULT '',
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, version)
);
INSERT INTO documents (kind, version, document, sha256, applied_by, source, note, applied_at)
SELECT 'routing', version, document, sha256, applied_by, source, note, applied_at FROM routing_policies;
DROP TABLE routing_policies;
DROP FUNCTION paygate_notify_routing_policy;
-- The routing policies as they were, for operators' queries.
CREATE VIEW routing_policies AS
SELECT version, document, sha256, applied_by, source, note, applied_at FROM documents WHERE kind = 'routing';

-- A pay request risk control holds for an operator's review is neither
-- accepted nor rejected yet.
ALTER TABLE pay_requests DROP CONSTRAINT pay_requests_outcome_check,
    ADD CONSTRAINT pay_requests_outcome_check CHECK (outcome IN ('accepted', 'rejected', 'review'));

-- Every risk decision: one per pay request decided (a redelivery decides
-- nothing again), with the rules version, the score, the rules that
-- matched and what they saw, and the outside service's exchange. keys are
-- what the request was counted under (velocity), and what events after
-- the money count under.
CREATE TABLE risk_decisions (
    message_id    text PRIMARY KEY,
    order_id      text NOT NULL,
    decided_at    timestamptz NOT NULL DEFAULT now(),
    decision      text NOT NULL CHECK (decision IN ('allow', 'review', 'deny')),
    rules_version bigint NOT NULL,
    score         int NOT NULL,
    matched       jsonb NOT NULL,
    inputs        jsonb NOT NULL,
    outside       jsonb,
    keys          text[] NOT NULL
);
CREATE INDEX risk_decisions_order ON risk_decisions (order_id, decided_at);

-- The review queue: a held pay request waits for an operator (or its
-- expiry, which decides by the rules' default). At most one review of an
-- order is pending. release_id is the message id under which an approved
-- request goes back to payinit (risk_review/<id>).
CREATE TABLE risk_reviews (
    id               bigserial PRIMARY KEY,
    order_id         text NOT NULL,
    message_id       text NOT NULL UNIQUE,
    status           text NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    default_decision text NOT NULL CHECK (default_decision IN ('approve', 'deny')),
    decided_at       timestamptz,
    decided_by       text NOT NULL DEFAULT '',
    note             text NOT NULL DEFAULT '',
    release_id       text UNIQUE
);
CREATE UNIQUE INDEX risk_reviews_pending ON risk_reviews (order_id) WHERE status = 'pending';
CREATE INDEX risk_reviews_order ON risk_reviews (order_id, id);
CREATE INDEX risk_reviews_due ON risk_reviews (expires_at) WHERE status = 'pending';

-- Velocity counters: per key ("email:a@example.com"), kind (request, or
-- an event after the money), currency and minute, how many and how much.
-- A request is counted in the transaction that decides it; events in the
-- transaction that finds them.
CREATE TABLE risk_counts (
    key      text NOT NULL,
    kind     text NOT NULL,
    currency text NOT NULL,
    bucket   timestamptz NOT NULL,
    n        bigint NOT NULL,
    amount   bigint NOT NULL,
    PRIMARY KEY (key, kind, currency, bucket)
);
CREATE INDEX risk_counts_bucket ON risk_counts (bucket);

-- Events after the money (a duplicate payment, a signed callback with a
-- wrong amount, a large refund), once each, counted under the keys of the
-- order's last risk decision.
CREATE TABLE risk_events (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    kind     text NOT NULL CHECK (kind IN ('duplicate_payment', 'amount_mismatch', 'large_refund')),
    ref      text NOT NULL,
    order_id text NOT NULL,
    amount   bigint NOT NULL,
    currency text NOT NULL,
    keys     text[] NOT NULL,
    UNIQUE (kind, ref)
);
CREATE INDEX risk_events_order ON risk_events (order_id);

-- paygate_risk_tally locks the velocity keys a batch decides by and then
-- reads their counts, in one round trip. The locks are transaction-level
-- advisory locks, taken one at a time in the order of their ids, so that
-- batches sharing keys queue rather than deadlock; the counts are read by
-- a statement that starts after the last lock is held, so it sees every
-- count committed by the transactions it waited for (a plpgsql function's
-- statements each take a new snapshot under READ COMMITTED). For each
-- probe i (a key, counted since since[i] and before until[i], NULL: up to
-- now) it returns the counts per kind and currency.
-- +goose StatementBegin
CREATE FUNCTION paygate_risk_tally(lock_keys text[], keys text[], since timestamptz[], until timestamptz[])
RETURNS TABLE (probe int, kind text, currency text, n bigint, amount bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    l int;
BEGIN
    FOR l IN SELECT DISTINCT hashtext(k) FROM unnest(lock_keys) AS k ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1919513451, l); -- 'risk'
    END LOOP;
    RETURN QUERY
    SELECT p.i::int, c.kind, c.currency, sum(c.n)::bigint, sum(c.amount)::bigint
    FROM unnest(keys, since, until) WITH ORDINALITY AS p(key, since, until, i)
    JOIN risk_counts c ON c.key = p.key AND c.bucket >= p.since AND (p.until IS NULL OR c.bucket < p.until)
    GROUP BY p.i, c.kind, c.currency;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION paygate_risk_tally;
DROP TABLE risk_events;
DROP TABLE risk_counts;
DROP TABLE risk_reviews;
DROP TABLE risk_decisions;
DELETE FROM pay_requests WHERE outcome = 'review';
ALTER TABLE pay_requests DROP CONSTRAINT pay_requests_outcome_check,
    ADD CONSTRAINT pay_requests_outcome_check CHECK (outcome IN ('accepted', 'rejected'));
DROP VIEW routing_policies;
CREATE TABLE routing_policies (
    version    bigserial PRIMARY KEY,
    document   bytea NOT NULL,
    sha256     text NOT NULL,
    applied_by text NOT NULL,
    source     text NOT NULL DEFAULT '',
    note       text NOT NULL DEFAULT '',
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO routing_policies SELECT version, document, sha256, applied_by, source, note, applied_at
FROM documents WHERE kind = 'routing' ORDER BY version;
SELECT setval('routing_policies_version_seq', coalesce((SELECT max(version) FROM routing_policies), 1),
    (SELECT count(*) > 0 FROM routing_policies));
-- +goose StatementBegin
CREATE FUNCTION paygate_notify_routing_policy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('paygate_routing_policy', NEW.version::text);
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER routing_policies_notify AFTER INSERT ON routing_policies
    FOR EACH ROW EXECUTE FUNCTION paygate_notify_routing_policy();
DROP TABLE documents;
