import XCTest
import Foundation
import TestSupport
import PostgresClient
@testable import DRKit

/// Partial restore from a whole backup: one table with the DDL it needs, chosen on pg_dump's dependency
/// graph, into a new database or into a new schema of the source itself.
final class PartialRestoreTests: DRKitTestCase {
    private let schemaSQL = """
        CREATE SCHEMA app; CREATE SCHEMA other;
        CREATE TYPE app.status AS ENUM ('new', 'paid');
        CREATE DOMAIN other.amount AS numeric(12,2) CHECK (VALUE >= 0);
        CREATE TABLE app.customers (id int PRIMARY KEY, name text NOT NULL);
        CREATE TABLE app.orders (id bigserial PRIMARY KEY, customer int NOT NULL REFERENCES app.customers, status app.status NOT NULL DEFAULT 'new',
                                 total other.amount, updated timestamptz);
        CREATE INDEX orders_by_status ON app.orders (status);
        CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.updated := now(); RETURN NEW; END$$;
        CREATE TRIGGER orders_touch BEFORE UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION app.touch();
        CREATE TABLE app.items (id int PRIMARY KEY, order_id bigint NOT NULL REFERENCES app.orders, quantity int);
        CREATE VIEW app.paid AS SELECT id, total FROM app.orders WHERE status = 'paid';
        COMMENT ON TABLE app.orders IS 'orders, one row each';
        INSERT INTO app.customers SELECT g, 'customer ' || g FROM generate_series(1, 10) g;
        INSERT INTO app.orders (customer, status, total) SELECT 1 + g % 10, CASE WHEN g % 2 = 0 THEN 'paid'::app.status ELSE 'new' END, g
            FROM generate_series(1, 400) g;
        INSERT INTO app.items SELECT g, g, 1 FROM generate_series(1, 100) g;
        """

    private func relations(in database: String) throws -> [String] {
        try Connection(conninfo: try conninfo(database)).query("""
            SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1
            """).rows.map { $0[0]! }
    }

    func testOneTableWithItsTypesSequencesTriggersAndIndexesAndNothingElse() throws {
        let source = try newDatabase("drkit_prestore", sql: schemaSQL)
        let id = try backup(source)
        let target = scratchName("drkit_prestore_one")
        let restored = try restore(id, into: target, extra: ["--key-file", keyFile, "--table", "app.orders"])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(restored.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["partialTables"] as? [String], ["app.orders"])
        XCTAssertEqual(report["skipped"] as? [String], ["FK CONSTRAINT app.orders orders_customer_fkey: needs app.customers, which is not restored"])

        XCTAssertEqual(try relations(in: target), ["app.orders:r", "app.orders_by_status:i", "app.orders_id_seq:S", "app.orders_pkey:i"])
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(target))["app.orders"],
                       try DatabaseFingerprint.contentHashes(try conninfo(source))["app.orders"])
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT last_value FROM app.orders_id_seq", in: target), "400")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT obj_description('app.orders'::regclass)", in: target), "orders, one row each")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_touch'", in: target), "1")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_type WHERE typname IN ('status', 'amount')", in: target), "2",
                       "the enum and the domain of another schema come along")
        // Parity over just the chosen table.
        let parity = try Command.drkit(["parity", "--source", try conninfo(source), "--target", try conninfo(target), "--checksum", "--tables", "app.orders", "--csv", workDirectory.appendingPathComponent("rowcount.csv").path])
        XCTAssertEqual(parity.status, 0, parity.stdout + parity.stderr)
    }

    func testIntoSchemaOfTheSourceTouchesNothingElse() throws {
        let source = try newDatabase("drkit_prestore_into", sql: schemaSQL)
        let id = try backup(source)
        let schemaBefore = try DatabaseFingerprint.normalizedSchema(database: source)
        let contentBefore = try DatabaseFingerprint.contentHashes(try conninfo(source))
        // The bad deploy: rows lost after the backup.
        try PostgresClientBridge.execute("DELETE FROM app.items WHERE order_id > 300; DELETE FROM app.orders WHERE id > 300", in: source)
        let damagedSchema = try DatabaseFingerprint.normalizedSchema(database: source)
        let damagedContent = try DatabaseFingerprint.contentHashes(try conninfo(source))
        XCTAssertEqual(damagedSchema, schemaBefore)

        let restored = try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try conninfo(source),
                                          "--table", "app.orders", "--into-schema", "recovered"])
        XCTAssertEqual(restored.status, 0, restored.stdout + restored.stderr)
        XCTAssertTrue(restored.stderr.contains("DOMAIN other.amount: outside schema app, expected to exist"), restored.stderr)
        // Everything that was there is as it was; the new schema holds the table as of the backup.
        let recovered = try DatabaseFingerprint.contentHashes(try conninfo(source))
        XCTAssertEqual(recovered.filter { !$0.key.hasPrefix("recovered.") }, damagedContent)
        XCTAssertEqual(recovered["recovered.orders"], contentBefore["app.orders"])
        let schemaAfter = try DatabaseFingerprint.normalizedSchema(database: source)
        XCTAssertTrue(schemaAfter.contains("CREATE TABLE recovered.orders"), "the table is in the new schema")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'recovered.orders'::regclass AND adnum = 1", in: source),
                       "nextval('recovered.orders_id_seq'::regclass)")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM app.orders", in: source), "300", "the source table is untouched")

        // The operator copies the lost rows back, as the runbook says (the enum was recreated in the new
        // schema, so its values are cast back to the original type).
        try PostgresClientBridge.execute("INSERT INTO app.orders (id, customer, status, total, updated) "
            + "SELECT id, customer, status::text::app.status, total, updated FROM recovered.orders WHERE id > 300", in: source)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(source))["app.orders"], contentBefore["app.orders"])

        // The schema exists now: a second restore into it is refused, and changes nothing.
        let again = try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try conninfo(source),
                                       "--table", "app.orders", "--into-schema", "recovered"])
        assertFailure(again, exitCode: 6, mentions: "already exists")
        let tables = try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try conninfo(source),
                                        "--table", "app.*", "--table", "public.x", "--into-schema", "other_name"])
        XCTAssertEqual(tables.status, 0, tables.stdout + tables.stderr)
        let nothing = try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try conninfo(scratchName("x")),
                                         "--table", "app.nope"])
        assertFailure(nothing, exitCode: 2, mentions: "no table in the backup matches")
    }
}
