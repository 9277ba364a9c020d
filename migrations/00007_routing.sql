-- +goose Up
-- Routing policies: every version ever applied, with who applied it, when
-- and from where (audit). The newest version is the one in force; a policy
-- is validated before it is stored, so every row is a valid policy.
CREATE TABLE routing_policies (
    version    bigserial PRIMARY KEY,
    document   bytea NOT NULL,
    sha256     text NOT NULL,
    applied_by text NOT NULL,
    source     text NOT NULL DEFAULT '',
    note       text NOT NULL DEFAULT '',
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
CREATE FUNCTION paygate_notify_routing_policy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('paygate_routing_policy', NEW.version::text);
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER routing_policies_notify AFTER INSERT ON routing_policies
    FOR EACH ROW EXECUTE FUNCTION paygate_notify_routing_policy();

-- Each attempt's routing decision: the segment and policy version its
-- outcome is attributed to, whether exploration chose it, which failover
-- hop it is, and the whole decision as evidence (candidates, scores,
-- reason). initiate_error is why Initiate failed, if it did: it tells an
-- attempt the PSP never started from one the buyer was declined at.
ALTER TABLE attempts
    ADD COLUMN segment        text NOT NULL DEFAULT '',
    ADD COLUMN policy_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN explore        boolean NOT NULL DEFAULT false,
    ADD COLUMN hop            smallint NOT NULL DEFAULT 0,
    ADD COLUMN routing        jsonb,
    ADD COLUMN initiate_error text NOT NULL DEFAULT '';

-- Snapshots of the routing health every payinit member folds from
-- paygate.routing-feedback.v1, with the offsets they reach: a member that
-- starts loads the newest and reads the topic on from there.
CREATE TABLE routing_snapshots (
    id       bigserial PRIMARY KEY,
    taken_at timestamptz NOT NULL DEFAULT now(),
    taken_by text NOT NULL,
    offsets  jsonb NOT NULL,
    state    bytea NOT NULL
);

-- +goose Down
DROP TABLE routing_snapshots;
ALTER TABLE attempts DROP COLUMN segment, DROP COLUMN policy_version, DROP COLUMN explore, DROP COLUMN hop,
    DROP COLUMN routing, DROP COLUMN initiate_error;
DROP TABLE routing_policies;
DROP FUNCTION paygate_notify_routing_policy;
