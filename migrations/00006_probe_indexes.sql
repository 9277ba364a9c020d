-- +goose NO TRANSACTION
-- +goose Up
-- The sweeper looks, every round, for open attempts whose probe is due:
-- the next one where one was scheduled, the first one a delay after the
-- session (or creation). Ordered by that time, it read and sorted every
-- open attempt (23 ms a round with 60,000 open; more with the abandoned
-- attempts of a busy mall). Each kind now has an index in that order, so
-- a round reads only the attempts it takes. CONCURRENTLY, so that a large
-- attempts table keeps taking payments while they are built.
CREATE INDEX CONCURRENTLY IF NOT EXISTS attempts_probe_next ON attempts (next_probe_at)
    WHERE status IN ('created', 'pending') AND next_probe_at IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS attempts_probe_first ON attempts ((coalesce(session_at, created_at)))
    WHERE status IN ('created', 'pending') AND next_probe_at IS NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS attempts_probe_first;
DROP INDEX CONCURRENTLY IF EXISTS attempts_probe_next;
