-- +goose Up
-- Reconciliation (DESIGN.md §7, docs/reconciliation.md). A run reconciles
-- one channel's business day: both sides flow through
-- paygate.reconciliation.v1 into recon_items, the recon group matches them
-- once both are complete, and keeps the totals here and the findings in
-- recon_mismatches.
CREATE TABLE recon_runs (
    run_id          text PRIMARY KEY,
    channel         text NOT NULL,
    day             date NOT NULL,
    timezone        text NOT NULL,
    tolerance_days  int NOT NULL CHECK (tolerance_days >= 0),
    -- slot is '' for a run asked for by hand, else the scheduler's slot
    -- (daily: after the day; final: after the tolerance window closed).
    slot            text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('collecting', 'done', 'abandoned')),
    -- as_of is the run's clock: whether the window was closed is judged
    -- at it, so that matching the same records again gives the same result.
    as_of           timestamptz NOT NULL,
    window_closes   timestamptz NOT NULL,
    window_days     text[] NOT NULL,
    -- Set by each side's end record: how many records it sent.
    ours_expected   int,
    psp_expected    int,
    psp_days        text[],        -- the days whose PSP list could be had
    psp_refunds     boolean NOT NULL DEFAULT false,
    error           text NOT NULL DEFAULT '',
    -- The result (NULL while collecting).
    window_closed   boolean,
    matched         int,
    straddled       int,
    held            int,
    unmatched       int,
    mismatches      int,
    ours_totals     jsonb,         -- {"payments": n, "payment_sums": {"USD": minor}, "refunds": n, "refund_sums": {...}}
    psp_totals      jsonb,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX recon_runs_day ON recon_runs (channel, day, started_at DESC);
CREATE INDEX recon_runs_recent ON recon_runs (started_at DESC);

-- Both sides' records of a run while it collects; deleted once matched.
CREATE TABLE recon_items (
    run_id        text NOT NULL REFERENCES recon_runs (run_id) ON DELETE CASCADE,
    side          text NOT NULL CHECK (side IN ('ours', 'psp')),
    seq           int NOT NULL,
    item          text NOT NULL CHECK (item IN ('payment', 'refund')),
    ref           text NOT NULL,
    psp_reference text NOT NULL DEFAULT '',
    amount        bigint NOT NULL CHECK (amount >= 0),
    currency      text NOT NULL,
    status        text NOT NULL,
    day           date NOT NULL,
    at            timestamptz NOT NULL,
    PRIMARY KEY (run_id, side, seq)
);

-- One row per finding of a channel-day, whichever run found it: a rerun
-- finds the same row again (last_run), so nothing is reported, published
-- or healed twice.
CREATE TABLE recon_mismatches (
    id            bigserial PRIMARY KEY,
    channel       text NOT NULL,
    day           date NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('missing_at_psp', 'missing_at_gateway', 'amount_mismatch',
                                               'currency_mismatch', 'status_mismatch', 'duplicate_at_psp')),
    item          text NOT NULL CHECK (item IN ('payment', 'refund')),
    ref           text NOT NULL,
    psp_reference text NOT NULL DEFAULT '',
    our_amount    bigint,
    our_currency  text,
    psp_amount    bigint,
    psp_currency  text,
    psp_status    text,
    detail        text NOT NULL DEFAULT '',
    first_run     text NOT NULL,
    last_run      text NOT NULL,
    -- heal: '' (nothing to heal), probing (a status probe is out),
    -- healed (the attempt is paid now), manual (a person must look:
    -- paygate has no attempt with that code, or it is a refund).
    heal          text NOT NULL DEFAULT '' CHECK (heal IN ('', 'probing', 'healed', 'manual')),
    healed_at     timestamptz,
    detected_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, day, kind, item, ref)
);
CREATE INDEX recon_mismatches_run ON recon_mismatches (last_run);
CREATE INDEX recon_mismatches_probing ON recon_mismatches (ref) WHERE heal = 'probing';
CREATE INDEX recon_mismatches_healing ON recon_mismatches (channel, ref) WHERE heal IN ('probing', 'healed');

-- Settlement lists imported by hand (paygate recon import): one per
-- channel-day, replaced whole by a new import. Such a list takes the
-- place of the channel's settlement API for its day.
CREATE TABLE recon_imports (
    channel     text NOT NULL,
    day         date NOT NULL,
    refunds     boolean NOT NULL,  -- the file has a type column, so it lists refunds
    rows        int NOT NULL,
    sha256      text NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, day)
);

CREATE TABLE recon_import_rows (
    channel       text NOT NULL,
    day           date NOT NULL,
    line          int NOT NULL,
    item          text NOT NULL CHECK (item IN ('payment', 'refund')),
    ref           text NOT NULL,
    psp_reference text NOT NULL DEFAULT '',
    amount        bigint NOT NULL CHECK (amount >= 0),
    currency      text NOT NULL,
    status        text NOT NULL,
    settled_at    timestamptz NOT NULL,
    PRIMARY KEY (channel, day, line),
    FOREIGN KEY (channel, day) REFERENCES recon_imports (channel, day) ON DELETE CASCADE
);

-- Our side of a window: paid attempts of a channel by when they were paid.
CREATE INDEX attempts_paid ON attempts (channel, paid_at) WHERE status = 'paid';
-- ... and refunds that succeeded, by when.
CREATE INDEX refunds_succeeded ON refunds (channel, finished_at) WHERE status = 'succeeded';

-- +goose Down
DROP INDEX attempts_paid, refunds_succeeded;
DROP TABLE recon_import_rows, recon_imports, recon_mismatches, recon_items, recon_runs;
