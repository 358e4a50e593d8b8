/// The round-trip fixture: every kind of relation and type the backup must carry.
public enum Fixture {
    /// Rows in `"Sales"."big_table"`, enough to exceed a 1 MiB split size several times.
    public static let bigTableRows = 60_000

    public static let sql = #"""
    CREATE SCHEMA "Sales";
    CREATE SCHEMA inventory;
    CREATE SCHEMA "ünïcode schema";

    CREATE TYPE inventory.mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN inventory.positive_int AS integer CHECK (VALUE > 0);
    CREATE TYPE inventory.address AS (street text, city text, zip varchar(10));

    CREATE FUNCTION inventory.touch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
    CREATE FUNCTION inventory.double_it(x integer) RETURNS integer IMMUTABLE LANGUAGE sql AS $$ SELECT x * 2 $$;

    CREATE TABLE "Sales"."Customers" (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        "Full Name" text NOT NULL,
        email text UNIQUE,
        mood inventory.mood,
        address inventory.address,
        quantity inventory.positive_int,
        doubled integer GENERATED ALWAYS AS (inventory.double_it(quantity)) STORED,
        tags text[],
        profile jsonb,
        photo bytea,
        balance numeric(40, 20),
        created_at timestamptz DEFAULT now(),
        updated_at timestamptz,
        wait interval,
        note text
    );
    CREATE TRIGGER customers_touch BEFORE UPDATE ON "Sales"."Customers" FOR EACH ROW EXECUTE FUNCTION inventory.touch();
    CREATE INDEX customers_name_idx ON "Sales"."Customers" ("Full Name");
    COMMENT ON TABLE "Sales"."Customers" IS 'customers, with every awkward type';

    INSERT INTO "Sales"."Customers" ("Full Name", email, mood, address, quantity, tags, profile, photo, balance, created_at, wait, note) VALUES
      ('Zoë Ångström', 'zoe@example.com', 'happy', ROW('Main St 1', 'Zürich', '8001'), 3, ARRAY['a','b c','{x}'], '{"k": [1, 2, {"n": null}]}', '\x00010200ff'::bytea, 12345678901234567890.12345678901234567890, '2024-01-02 03:04:05.678+01', '1 year 2 mons 3 days 04:05:06', E'tab\there\nnewline \\ backslash'),
      ('Empty', '', 'ok', NULL, 1, '{}', '{}', '\x'::bytea, 0, '1999-12-31 23:59:59+00', '-1 day', ''),
      ('Nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      ('Quote "double" and ''single''', 'q@example.com', 'sad', ROW(NULL, 'a,b', NULL), 7, ARRAY[NULL, 'NULL'], '"string"', decode('00000000', 'hex'), -0.00000000000000000001, 'infinity', '0', E'\\N is not null');

    CREATE TABLE "Sales".big_table (
        id bigserial PRIMARY KEY,
        customer_id integer REFERENCES "Sales"."Customers"(id),
        payload text,
        amount numeric(12, 2),
        at timestamptz
    );
    INSERT INTO "Sales".big_table (customer_id, payload, amount, at)
      SELECT 1 + (g % 4), md5(g::text) || repeat('x', g % 50), (g % 10000) / 100.0, '2024-01-01'::timestamptz + g * interval '1 minute'
      FROM generate_series(1, 60000) g;
    CREATE INDEX big_table_at_idx ON "Sales".big_table (at);

    CREATE TABLE inventory.events (id bigint NOT NULL, at date NOT NULL, body text) PARTITION BY RANGE (at);
    CREATE TABLE inventory.events_2024 PARTITION OF inventory.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE inventory.events_2025 PARTITION OF inventory.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    ALTER TABLE inventory.events ADD PRIMARY KEY (id, at);
    INSERT INTO inventory.events SELECT g, '2024-01-01'::date + g, 'event ' || g FROM generate_series(1, 600) g;

    CREATE TABLE inventory.animals (id serial PRIMARY KEY, name text);
    CREATE TABLE inventory.dogs (good boolean DEFAULT true) INHERITS (inventory.animals);
    INSERT INTO inventory.animals (name) VALUES ('generic animal');
    INSERT INTO inventory.dogs (name, good) VALUES ('rex', true), ('fido', false);

    CREATE UNLOGGED TABLE inventory.cache (k text PRIMARY KEY, v text);
    INSERT INTO inventory.cache VALUES ('a', '1'), ('b', NULL);

    CREATE TABLE inventory.empty_table (id int, v text);

    CREATE TABLE "ünïcode schema"."Tâble ✓" ("Çolumn" text, "MixedCase" int);
    INSERT INTO "ünïcode schema"."Tâble ✓" VALUES ('日本語テキスト', 1), ('emoji 🐘', 2);

    CREATE VIEW "Sales".customer_names AS SELECT id, "Full Name" FROM "Sales"."Customers";
    CREATE MATERIALIZED VIEW "Sales".amount_by_customer AS
      SELECT customer_id, count(*) AS n, sum(amount) AS total FROM "Sales".big_table GROUP BY customer_id;
    CREATE UNIQUE INDEX amount_by_customer_idx ON "Sales".amount_by_customer (customer_id);
    CREATE MATERIALIZED VIEW "Sales".top_customer AS SELECT * FROM "Sales".amount_by_customer ORDER BY total DESC LIMIT 1;
    CREATE MATERIALIZED VIEW "Sales".never_populated AS SELECT 1 AS one WITH NO DATA;

    CREATE SEQUENCE inventory.invoice_numbers START 1000 INCREMENT 7;
    SELECT setval('inventory.invoice_numbers', 424242, true);
    CREATE SEQUENCE inventory.uncalled;
    SELECT setval('inventory.uncalled', 55, false);
    """#
}
