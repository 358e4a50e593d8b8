-- A small shop database for the demo: several schemas, awkward types, a partitioned table,
-- a materialized view and sequences, so the rehearsal exercises what real databases hold.
CREATE SCHEMA shop;
CREATE SCHEMA billing;
CREATE TYPE shop.order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');

CREATE TABLE shop.customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    profile jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO shop.customers (email, name, profile, created_at)
SELECT 'customer' || g || '@example.com', 'Customer ' || g,
       jsonb_build_object('tier', (ARRAY['free', 'pro', 'enterprise'])[1 + g % 3], 'tags', jsonb_build_array(g % 7, g % 11)),
       '2025-01-01'::timestamptz + g * interval '37 minutes'
FROM generate_series(1, 20000) g;

CREATE TABLE shop.orders (
    id bigserial,
    customer_id bigint NOT NULL REFERENCES shop.customers (id),
    status shop.order_status NOT NULL,
    total numeric(12, 2) NOT NULL,
    items text[] NOT NULL,
    ordered_at timestamptz NOT NULL,
    PRIMARY KEY (id, ordered_at)
) PARTITION BY RANGE (ordered_at);
CREATE TABLE shop.orders_2025 PARTITION OF shop.orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE shop.orders_2026 PARTITION OF shop.orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO shop.orders (customer_id, status, total, items, ordered_at)
SELECT 1 + g % 20000, (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4]::shop.order_status,
       round((g % 50000) / 100.0, 2), ARRAY['sku-' || g % 97, 'sku-' || g % 89],
       '2025-01-01'::timestamptz + (g % 600) * interval '1 day' + (g % 1440) * interval '1 minute'
FROM generate_series(1, 200000) g;
CREATE INDEX orders_customer_idx ON shop.orders (customer_id);

CREATE TABLE billing.invoices (
    number bigint PRIMARY KEY,
    order_id bigint NOT NULL,
    pdf bytea,
    note text
);
CREATE SEQUENCE billing.invoice_number START 100000;
INSERT INTO billing.invoices
SELECT nextval('billing.invoice_number'), g, decode(md5(g::text), 'hex'), CASE WHEN g % 10 = 0 THEN E'line one\nline two\ttabbed' END
FROM generate_series(1, 50000) g;

CREATE MATERIALIZED VIEW shop.revenue_by_status AS
SELECT status, count(*) AS orders, sum(total) AS revenue FROM shop.orders GROUP BY status;
