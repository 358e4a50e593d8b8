import XCTest
import Foundation
import TestSupport
import PostgresClient
@testable import DRKit

/// Partial backups select with pg_dump's pattern rules (wildcards, quoting, case), DDL and data alike.
final class PartialBackupTests: DRKitTestCase {
    private let schemaSQL = """
        CREATE SCHEMA app; CREATE SCHEMA audit;
        CREATE TYPE app.status AS ENUM ('new', 'paid');
        CREATE TABLE app.customers (id int PRIMARY KEY, name text NOT NULL);
        CREATE TABLE app.orders (id bigserial PRIMARY KEY, customer int NOT NULL REFERENCES app.customers, status app.status NOT NULL);
        CREATE TABLE app.logs (id int, line text);
        CREATE TABLE app."MixedCase" (id int);
        CREATE TABLE app.mixedcase (id int);
        CREATE TABLE audit.events (id int);
        CREATE TABLE public.other (id int);
        INSERT INTO app.customers SELECT g, 'customer ' || g FROM generate_series(1, 20) g;
        INSERT INTO app.orders (customer, status) SELECT 1 + g % 20, CASE WHEN g % 3 = 0 THEN 'paid'::app.status ELSE 'new' END FROM generate_series(1, 300) g;
        INSERT INTO app.logs SELECT g, 'line ' || g FROM generate_series(1, 50) g;
        INSERT INTO app."MixedCase" VALUES (1), (2);
        INSERT INTO app.mixedcase VALUES (3);
        INSERT INTO audit.events VALUES (7);
        INSERT INTO public.other VALUES (9);
        SELECT lo_from_bytea(0, '\\x0102'::bytea);
        """

    /// `schema.table=rows` of every user table.
    private func tables(in database: String) throws -> [String] {
        let connection = try Connection(conninfo: try conninfo(database))
        return try connection.query("""
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1, 2
            """).rows.map { row in
            "\(row[0]!).\(row[1]!)=" + (try connection.query("SELECT count(*) FROM \(Connection.qualified(row[0]!, row[1]!))").scalar ?? "?")
        }
    }

    func testSchemaSelectionWithExclusionsCarriesExactlyWhatPgDumpSelects() throws {
        let source = try newDatabase("drkit_partial", sql: schemaSQL)
        let whole = try backup(source)
        let partialRun = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--json",
                                            "--schema", "app", "--exclude-table", "app.\"MixedCase\"", "--exclude-table-data", "app.log*"])
        XCTAssertEqual(partialRun.status, 0, partialRun.stderr)
        let partialReport = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(partialRun.stdout.utf8)) as? [String: Any])
        let id = try XCTUnwrap(partialReport["backupId"] as? String)
        XCTAssertNil(partialReport["shrinkage"], "a partial backup is not compared with a whole one (its missing tables are not losses)")
        let nextWhole = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--json"])
        let nextReport = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(nextWhole.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((nextReport["shrinkage"] as? [String: Any])?["previousBackupId"] as? String, whole, "whole backups compare with whole ones")
        XCTAssertEqual(((nextReport["shrinkage"] as? [String: Any])?["tables"] as? [Any])?.count, 0)
        let listed = try Command.drkit(["list", "--repo", repo])
        XCTAssertTrue(listed.stdout.contains("\(source) (partial)"), listed.stdout)
        XCTAssertEqual(try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile]).status, 0)

        let target = scratchName("drkit_partial_restored")
        let restored = try restore(id, into: target, extra: ["--key-file", keyFile])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        // The schema's tables, the quoted name left out (its lower-case twin kept), the log table's definition without rows.
        XCTAssertEqual(try tables(in: target), ["app.customers=20", "app.logs=0", "app.mixedcase=1", "app.orders=300"])
        let hashes = try DatabaseFingerprint.contentHashes(try conninfo(target))
        let sourceHashes = try DatabaseFingerprint.contentHashes(try conninfo(source))
        for table in ["app.customers", "app.orders", "app.mixedcase"] { XCTAssertEqual(hashes[table], sourceHashes[table], table) }
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_largeobject_metadata", in: target), "0",
                       "--schema leaves large objects out, as pg_dump does")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT last_value FROM app.orders_id_seq", in: target),
                       try PostgresClientBridge.scalar("SELECT last_value FROM app.orders_id_seq", in: source))
    }

    func testTablePatternsFollowQuotingAndCase() throws {
        let source = try newDatabase("drkit_partial_case", sql: schemaSQL)
        let quoted = try backup(source, extra: ["--table", "app.\"MixedCase\""])
        let quotedTarget = scratchName("drkit_partial_quoted")
        XCTAssertEqual(try restore(quoted, into: quotedTarget, extra: ["--key-file", keyFile]).status, 0)
        XCTAssertEqual(try tables(in: quotedTarget), ["app.MixedCase=2"])

        let folded = try backup(source, extra: ["--table", "APP.MIXEDCASE", "--table", "public.*"])
        let foldedTarget = scratchName("drkit_partial_folded")
        XCTAssertEqual(try restore(folded, into: foldedTarget, extra: ["--key-file", keyFile]).status, 0)
        XCTAssertEqual(try tables(in: foldedTarget), ["app.mixedcase=1", "public.other=1"], "unquoted patterns fold to lower case")

        let nothing = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--table", "app.nope*"])
        assertFailure(nothing, exitCode: 2, mentions: "selects nothing")
        XCTAssertEqual(try Command.drkit(["list", "--repo", repo, "--json"]).stdout.components(separatedBy: "\"backupId\"").count - 1, 2,
                       "the refused backup left nothing listed")
    }
}

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

/// D10: a partitioned table holds no rows itself; choosing it restores its partitions, at every level.
final class PartitionedPartialRestoreTests: DRKitTestCase {
    func testAPartitionedTableIsRestoredWithItsPartitions() throws {
        let source = try newDatabase("drkit_prestore_parts", sql: """
            CREATE TABLE public.measurements (id int NOT NULL, taken date NOT NULL, value numeric) PARTITION BY RANGE (taken);
            CREATE TABLE public.measurements_2024 PARTITION OF public.measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
                PARTITION BY HASH (id);
            CREATE TABLE public.measurements_2024_a PARTITION OF public.measurements_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
            CREATE TABLE public.measurements_2024_b PARTITION OF public.measurements_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
            CREATE TABLE public.measurements_2025 PARTITION OF public.measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
            CREATE TABLE public.unrelated (id int); INSERT INTO public.unrelated VALUES (1);
            INSERT INTO public.measurements SELECT g, date '2024-01-01' + (g % 700), g FROM generate_series(1, 20000) g;
            """)
        let id = try backup(source)
        let target = scratchName("drkit_prestore_parts_t")
        let restored = try restore(id, into: target, extra: ["--key-file", keyFile, "--table", "public.measurements"])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM public.measurements", in: target), "20000")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM public.measurements_2024_b", in: target),
                       try PostgresClientBridge.scalar("SELECT count(*) FROM public.measurements_2024_b", in: source))
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_class WHERE relname = 'unrelated'", in: target), "0")

        let into = try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try conninfo(source),
                                      "--table", "public.measurements", "--into-schema", "recovered"])
        XCTAssertEqual(into.status, 0, into.stdout + into.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM recovered.measurements", in: source), "20000")
    }

    func testIntoSchemaNamesArePlainNewSchemas() throws {
        let id = try backup(try newDatabase("drkit_prestore_names", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);"))
        for name in ["", "pg_temp", "pg_foo", String(repeating: "x", count: 64)] {
            let result = try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try conninfo(scratchName("x")),
                                            "--table", "public.t", "--into-schema", name])
            XCTAssertEqual(result.status, 2, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("--into-schema"), result.stderr)
        }
    }
}

/// The pure parts: pattern rules and the plan over a table of contents.
final class PartialRestorePlanTests: XCTestCase {
    func testNamePatternsFollowPsqlRules() throws {
        XCTAssertTrue(try NamePattern("app.orders").matches(schema: "app", name: "orders"))
        XCTAssertTrue(try NamePattern("APP.Orders").matches(schema: "app", name: "orders"), "unquoted letters fold")
        XCTAssertFalse(try NamePattern("app.\"Orders\"").matches(schema: "app", name: "orders"))
        XCTAssertTrue(try NamePattern("app.\"Orders\"").matches(schema: "app", name: "Orders"))
        XCTAssertTrue(try NamePattern("app.ord*").matches(schema: "app", name: "orders"))
        XCTAssertTrue(try NamePattern("*.orders").matches(schema: "billing", name: "orders"))
        XCTAssertTrue(try NamePattern("orders").matches(schema: "any", name: "orders"), "no schema part: any schema")
        XCTAssertTrue(try NamePattern("\"a.b\"").matches(schema: "s", name: "a.b"), "a quoted dot is part of the name")
        XCTAssertFalse(try NamePattern("\"a*\"").matches(schema: "s", name: "ab"), "quoted wildcards are literal")
        XCTAssertTrue(try NamePattern("t$").matches(schema: "s", name: "t$"), "$ is literal")
        XCTAssertThrowsError(try NamePattern("a.b.c.d"))
    }

    func testPlanTakesDependenciesAndAttachmentsAndSkipsForeignKeysToTablesLeftOut() throws {
        func entry(_ id: Int, _ type: String, _ schema: String?, _ name: String, _ deps: [Int] = []) -> DumpTOC.Entry {
            DumpTOC.Entry(id: id, section: 2, type: type, schema: schema, name: name, dependencies: deps)
        }
        let toc = DumpTOC(entries: [
            entry(1, "SCHEMA", nil, "app"), entry(2, "TYPE", "app", "status", [1]),
            entry(3, "TABLE", "app", "customers", [1]), entry(4, "TABLE", "app", "orders", [1, 2]),
            entry(5, "SEQUENCE", "app", "orders_id_seq", [1, 4]), entry(6, "DEFAULT", "app", "orders id", [4, 5]),
            entry(7, "CONSTRAINT", "app", "customers customers_pkey", [3]), entry(8, "FK CONSTRAINT", "app", "orders orders_customer_fkey", [4, 7]),
            entry(9, "FUNCTION", "app", "touch()", [1]), entry(10, "TRIGGER", "app", "orders orders_touch", [4, 9]),
            entry(11, "VIEW", "app", "paid", [4]), entry(12, "ACL", "app", "TABLE orders", [4]),
        ])
        let plan = try PartialRestorePlan.make(toc: toc, tablePatterns: ["app.orders"], schemaPatterns: [])
        XCTAssertEqual(plan.tables, ["app.orders"])
        XCTAssertEqual(Set(plan.entries.map(\.name)), ["app", "status", "orders", "orders_id_seq", "orders id", "touch()", "orders orders_touch", "TABLE orders"])
        XCTAssertEqual(plan.skipped, ["FK CONSTRAINT app.orders orders_customer_fkey: needs app.customers, which is not restored"])
        let both = try PartialRestorePlan.make(toc: toc, tablePatterns: ["app.orders", "app.customers"], schemaPatterns: [])
        XCTAssertTrue(both.entries.contains(.init(type: "FK CONSTRAINT", schema: "app", name: "orders orders_customer_fkey")))
        XCTAssertFalse(both.entries.contains { $0.type == "VIEW" }, "a view is not part of its tables")
        let schema = try PartialRestorePlan.make(toc: toc, tablePatterns: [], schemaPatterns: ["app"])
        XCTAssertTrue(schema.entries.contains(.init(type: "VIEW", schema: "app", name: "paid")), "a whole schema brings its views")
    }

    func testUnreadableArchivesAreRefusedByName() {
        let header = Array("PGDMP".utf8)
        for bytes in [[], Array("NOTADUMP!!!!".utf8), header + [1, 17, 0, 4, 8, 1, 0, 0, 0, 0, 0], header + [1, 14, 0, 4, 8, 1, 0, 1]] {
            XCTAssertThrowsError(try DumpTOC.parse(bytes)) { XCTAssertTrue($0 is DumpTOC.Malformed, "\($0)") }
        }
    }

    func testSchemaRenameRewritesQualifiersOnly() {
        XCTAssertEqual(SchemaRename.rename("ALTER TABLE ONLY app.orders ALTER COLUMN id SET DEFAULT nextval('app.orders_id_seq'::regclass);", from: "app", to: "recovered"),
                       "ALTER TABLE ONLY \"recovered\".orders ALTER COLUMN id SET DEFAULT nextval('\"recovered\".orders_id_seq'::regclass);")
        XCTAssertEqual(SchemaRename.rename("CREATE TABLE myapp.t (a app.status); -- happ.x", from: "app", to: "r"),
                       "CREATE TABLE myapp.t (a \"r\".status); -- happ.x")
        XCTAssertEqual(SchemaRename.rename("CREATE TABLE \"My App\".t ();", from: "My App", to: "r"), "CREATE TABLE \"r\".t ();")
    }
}
