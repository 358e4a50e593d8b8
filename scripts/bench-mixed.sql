-- The benchmark's second dataset: the type mix real databases have, about 1 GB on disk (heap, TOAST and
-- indexes; about 0.75 GB of COPY text) at scale 1. Run with psql -v scale=N (a positive number) on an
-- empty database. Deterministic: the same scale gives the same rows (no random()), so runs compare.
--
--   customers  jsonb profiles (GIN), numeric balances, an expression index on lower(email)
--   orders     jsonb line items (GIN jsonb_path_ops), numeric money, text[] tags (GIN), a partial index,
--              a foreign key to customers
--   documents  long TOASTed text (1.3 to 4 KB of words), a foreign key to customers
--   blobs      bytea of 1 to 4 KB, incompressible
--   wide       40 columns of int, bigint, numeric, text, bool, date, timestamptz
--   metrics    float8[] and int[] arrays, a (sensor, at) index
\set ON_ERROR_STOP on
SELECT greatest(1, round(130000 * :scale))::int AS customers,
       greatest(1, round(800000 * :scale))::int AS orders,
       greatest(1, round(80000 * :scale))::int AS documents,
       greatest(1, round(30000 * :scale))::int AS blobs,
       greatest(1, round(200000 * :scale))::int AS wide,
       greatest(1, round(650000 * :scale))::int AS metrics \gset

CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, name text NOT NULL, profile jsonb NOT NULL,
                        created date NOT NULL, balance numeric(16,2) NOT NULL);
INSERT INTO customers
SELECT g, 'user' || g || '@example' || (g % 97) || '.com', 'Customer ' || md5(g::text),
       jsonb_build_object('tier', (ARRAY['free','pro','team','enterprise'])[1 + g % 4], 'country', chr(65 + g % 26) || chr(65 + g % 7),
                          'prefs', jsonb_build_object('mail', g % 2 = 0, 'lang', (ARRAY['en','de','fr','ja'])[1 + g % 4]),
                          'score', (g % 1000) / 10.0, 'labels', jsonb_build_array('l' || g % 13, 'l' || g % 29)),
       date '2015-01-01' + g % 3650, ((g::bigint * 7919) % 10000000) / 100.0
FROM generate_series(1, :customers) g;
CREATE INDEX customers_email_lower ON customers (lower(email));
CREATE INDEX customers_profile ON customers USING gin (profile);

CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, placed_at timestamptz NOT NULL,
                     status text NOT NULL, total numeric(14,2) NOT NULL, tax numeric(12,4) NOT NULL, items jsonb NOT NULL,
                     tags text[] NOT NULL, note text);
INSERT INTO orders
SELECT g, 1 + (g * 31) % :customers, timestamptz '2020-01-01 00:00:00+00' + g * interval '47 seconds',
       (ARRAY['open','paid','shipped','returned','cancelled'])[1 + g % 5], ((g::bigint * 104729) % 5000000) / 100.0,
       ((g * 7) % 1000000) / 10000.0,
       jsonb_build_array(jsonb_build_object('sku', 'SKU-' || g % 5000, 'qty', 1 + g % 5, 'price', (g % 9999) / 100.0),
                         jsonb_build_object('sku', 'SKU-' || (g * 7) % 5000, 'qty', 1 + g % 3, 'price', (g % 4999) / 100.0,
                                            'gift', g % 11 = 0)),
       ARRAY['t' || g % 17, 't' || g % 23, 'c' || g % 5],
       CASE WHEN g % 4 = 0 THEN NULL ELSE 'deliver to door ' || md5(g::text) END
FROM generate_series(1, :orders) g;
CREATE INDEX orders_items ON orders USING gin (items jsonb_path_ops);
CREATE INDEX orders_tags ON orders USING gin (tags);
CREATE INDEX orders_open ON orders (placed_at) WHERE status = 'open';
CREATE INDEX orders_customer ON orders (customer_id);

CREATE TABLE documents (id bigint PRIMARY KEY, owner int NOT NULL REFERENCES customers, title text NOT NULL, body text NOT NULL,
                        created timestamptz NOT NULL);
INSERT INTO documents
SELECT g, 1 + (g * 13) % :customers, 'Document ' || g,
       (SELECT string_agg(md5((g::bigint * 131 + i)::text), ' ') FROM generate_series(1, 40 + g % 80) i),
       timestamptz '2021-06-01 00:00:00+00' + g * interval '9 minutes'
FROM generate_series(1, :documents) g;

CREATE TABLE blobs (id int PRIMARY KEY, kind smallint NOT NULL, data bytea NOT NULL, digest text NOT NULL);
INSERT INTO blobs
SELECT g, (g % 7)::smallint, b, md5(b)
FROM generate_series(1, :blobs) g,
     LATERAL (SELECT decode(string_agg(md5((g::bigint * 1009 + i)::text), ''), 'hex') AS b FROM generate_series(1, 64 + g % 192) i) x;

CREATE TABLE wide (id int PRIMARY KEY,
  i1 int, i2 int, i3 int, i4 int, i5 int, i6 int, i7 int, i8 int,
  b1 bigint, b2 bigint, b3 bigint, b4 bigint,
  n1 numeric(12,2), n2 numeric(12,2), n3 numeric(18,6), n4 numeric(18,6),
  t1 text, t2 text, t3 text, t4 text, t5 text, t6 text,
  f1 bool, f2 bool, f3 bool, f4 bool,
  d1 date, d2 date, d3 date,
  s1 timestamptz, s2 timestamptz, s3 timestamptz,
  r1 real, r2 real, r3 double precision, r4 double precision,
  v1 varchar(20), v2 varchar(40), v3 varchar(80));
INSERT INTO wide
SELECT g, g % 10, g % 100, g % 1000, g, -g, g * 3, g % 7, g % 13,
       g::bigint * 1000003, g::bigint * 7, -g::bigint, g::bigint % 1000,
       (g % 100000) / 100.0, (g % 777) / 3.0, g / 7.0, (g % 31) * 1.5,
       'alpha' || g % 50, md5(g::text), substr(md5((g + 1)::text), 1, 12), 'status-' || g % 4, repeat('x', g % 30), 'k' || g,
       g % 2 = 0, g % 3 = 0, g % 5 = 0, g % 7 = 0,
       date '2000-01-01' + g % 9000, date '2020-01-01' + g % 400, date '1990-01-01' + g % 12000,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', timestamptz '2010-01-01 00:00:00+00' + g * interval '1 hour',
       timestamptz '2025-01-01 00:00:00+00' - g * interval '1 minute',
       g / 3.0, g % 1000 / 7.0, g * 1.000001, sqrt(g),
       'v' || g % 999, 'value ' || md5(g::text), 'a longer value ' || md5(g::text) || md5((g * 2)::text)
FROM generate_series(1, :wide) g;
CREATE INDEX wide_t1 ON wide (t1);

CREATE TABLE metrics (id bigint PRIMARY KEY, sensor int NOT NULL, at timestamptz NOT NULL, vals float8[] NOT NULL, ints int[] NOT NULL);
INSERT INTO metrics
SELECT g, g % 500, timestamptz '2026-01-01 00:00:00+00' + (g / 500) * interval '10 seconds',
       ARRAY[g / 3.0, g % 97 * 1.25, sqrt(g), g % 13 / 7.0], ARRAY[g % 10, g % 100, g % 1000, g]
FROM generate_series(1, :metrics) g;
CREATE INDEX metrics_sensor_at ON metrics (sensor, at);

VACUUM ANALYZE;
