-- The database the v1 fixture backup was taken from (by drkit at commit cb70886, gzip level 6).
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id serial PRIMARY KEY, name text NOT NULL, note text);
CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer int REFERENCES shop.customers, total numeric(10,2), placed timestamptz);
CREATE INDEX orders_customer ON shop.orders (customer);
INSERT INTO shop.customers (name, note) SELECT 'customer ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE E'tab\there' END FROM generate_series(1, 50) g;
INSERT INTO shop.orders SELECT g, 1 + g % 50, g * 1.25, '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 hour' FROM generate_series(1, 3000) g;
