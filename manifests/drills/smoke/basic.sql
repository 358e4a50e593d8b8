-- Smoke checks for a restored database: every query must return true.
-- Replace these with checks of your own application's data.

-- The database has user tables.
SELECT count(*) > 0 FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema');

-- No invalid indexes were left by the restore.
SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index WHERE NOT indisvalid);

-- Statistics were gathered (the restore runs ANALYZE).
SELECT count(*) > 0 FROM pg_catalog.pg_stats WHERE schemaname NOT IN ('pg_catalog', 'information_schema');
