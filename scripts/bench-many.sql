-- The benchmark's many-tables set: psql -v tables=N. Each table has a primary key, an index and a
-- foreign key to one parent, and 50 rows: per-object costs, not data, decide its backup and restore.
-- A commit every 1,000 tables keeps the creating transaction inside the server's default lock table.
\set ON_ERROR_STOP on
CREATE TABLE parent (id int PRIMARY KEY);
INSERT INTO parent SELECT generate_series(1, 100);
SELECT :tables AS tables \gset
CREATE PROCEDURE pg_temp.make_tables(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, parent int NOT NULL REFERENCES parent, v text)', i);
    EXECUTE format('CREATE INDEX ON t%s (v)', i);
    EXECUTE format('INSERT INTO t%s SELECT g, 1 + g %% 100, md5(g::text) FROM generate_series(1, 50) g', i);
    IF i % 1000 = 0 THEN COMMIT; END IF;
  END LOOP;
END $$;
CALL pg_temp.make_tables(:tables);
VACUUM ANALYZE;
