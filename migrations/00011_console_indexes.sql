-- +goose NO TRANSACTION
-- +goose Up
-- What the operator console looks up (docs/console.md): an order by its
-- PSP reference or its buyer (a support ticket names those), and the
-- attempts that ended recently (the Overview's success rate, the Channels
-- page). Without them each is a scan of the whole table. Partial, so that
-- the hot path pays only for rows that can match. CONCURRENTLY, so that a
-- live gateway keeps writing while they are built; hence no transaction.
CREATE INDEX CONCURRENTLY IF NOT EXISTS attempts_psp_reference ON attempts (psp_reference) WHERE psp_reference <> '';
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_buyer_id ON orders ((buyer ->> 'id')) WHERE buyer ->> 'id' <> '';
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_buyer_email ON orders ((lower(buyer ->> 'email'))) WHERE buyer ->> 'email' <> '';
CREATE INDEX CONCURRENTLY IF NOT EXISTS attempts_finished ON attempts (updated_at) WHERE status IN ('paid', 'failed', 'expired');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS attempts_finished;
DROP INDEX CONCURRENTLY IF EXISTS orders_buyer_email;
DROP INDEX CONCURRENTLY IF EXISTS orders_buyer_id;
DROP INDEX CONCURRENTLY IF EXISTS attempts_psp_reference;
