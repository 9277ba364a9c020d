-- +goose NO TRANSACTION
-- +goose Up
-- `paygate order <id>` shows an order's events from the outbox, which holds
-- a day of every order's events: without an index on the Kafka key that is
-- a scan of all of them (seconds per million rows). CONCURRENTLY, so that
-- a large outbox keeps taking events while the index is built; hence no
-- transaction around it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_key ON outbox (key);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS outbox_key;
