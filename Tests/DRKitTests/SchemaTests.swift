import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

final class SchemaNormalizationTests: XCTestCase {
    /// PostgreSQL 16+ prints a single-table view's columns unqualified; 15 qualified them. Both read
    /// the same; a view over a join keeps its qualifiers (every version prints them).
    func testSingleTableViewsReadTheSameFrom15And18() {
        let fifteen = "CREATE VIEW public.big_orders AS\n SELECT orders.id,\n    orders.total\n   FROM public.orders\n  WHERE (orders.total > (1000)::numeric);"
        let eighteen = "CREATE VIEW public.big_orders AS\n SELECT id,\n    total\n   FROM public.orders\n  WHERE (total > (1000)::numeric);"
        XCTAssertEqual(SchemaText(pgDumpOutput: fifteen), SchemaText(pgDumpOutput: eighteen))
        XCTAssertNotEqual(SchemaText(pgDumpOutput: fifteen), SchemaText(pgDumpOutput: eighteen.replacingOccurrences(of: "1000", with: "2000")))
        let join = "CREATE VIEW public.v AS\n SELECT o.id,\n    c.name\n   FROM (public.orders o\n     JOIN public.customers c ON ((c.id = o.customer)));"
        XCTAssertEqual(SchemaText(pgDumpOutput: join).statements.first?.text, join)
    }

    func testRunVaryingLinesAreDroppedAndBodiesKept() {
        let a = """
            --\r
            -- PostgreSQL database dump\r
            --\r
            \\restrict abc123\r
            -- Dumped from database version 15.18\r
            -- Dumped by pg_dump version 15.18\r
            SET statement_timeout = 0;\r
            SELECT pg_catalog.set_config('search_path', '', false);\r
            --\r
            -- Name: f(); Type: FUNCTION; Schema: public; Owner: -\r
            --\r
            CREATE FUNCTION public.f() RETURNS integer   \r
                LANGUAGE plpgsql\r
                AS $$\r
            -- Name: kept; Type: inside a body\r
            SET x = 1;\r
            BEGIN RETURN 1; END $$;\r
            \r
            \r
            \r
            CREATE TABLE public.t (\r
                id integer\r
            );\r
            \\unrestrict abc123\r
            """
        let b = """
            -- drkit schema snapshot
            -- iteration: 3
            -- end of drkit header
            \\restrict zzz
            CREATE FUNCTION public.f() RETURNS integer
                LANGUAGE plpgsql
                AS $$
            -- Name: kept; Type: inside a body
            SET x = 1;
            BEGIN RETURN 1; END $$;

            CREATE TABLE public.t (
                id integer
            );
            """
        let normalizedA = SchemaText(pgDumpOutput: a)
        XCTAssertEqual(normalizedA, SchemaText(pgDumpOutput: b))
        XCTAssertEqual(normalizedA.statements.count, 2)
        XCTAssertTrue(normalizedA.normalized.contains("SET x = 1;"), "function bodies are never normalized")
        XCTAssertEqual(normalizedA.statements.map(\.object.kind), [.function, .table])
        XCTAssertEqual(normalizedA.statements[0].object.name, "public.f()")
    }

    func testUnifiedDiffMatchesDiffU() throws {
        let old = (1...40).map { "line \($0)" }.joined(separator: "\n")
        var newLines = (1...40).map { "line \($0)" }
        newLines.remove(at: 4)
        newLines.insert("inserted", at: 20)
        newLines[35] = "changed"
        let new = newLines.joined(separator: "\n")
        let ours = UnifiedDiff.render(old: old, new: new, oldLabel: "a", newLabel: "b")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try (old + "\n").write(to: dir.appendingPathComponent("a"), atomically: true, encoding: .utf8)
        try (new + "\n").write(to: dir.appendingPathComponent("b"), atomically: true, encoding: .utf8)
        let reference = try Command.run("/usr/bin/diff", ["-u", "--label", "a", "--label", "b", dir.appendingPathComponent("a").path, dir.appendingPathComponent("b").path])
        XCTAssertEqual(ours, reference.stdout)
        XCTAssertEqual(UnifiedDiff.render(old: old, new: old, oldLabel: "a", newLabel: "b"), "")
    }

    func testNarrowingRules() {
        XCTAssertTrue(ColumnType.isNarrowing(from: "bigint", to: "integer"))
        XCTAssertFalse(ColumnType.isNarrowing(from: "integer", to: "bigint"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "text", to: "character varying(10)"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "character varying(20)", to: "character varying(10)"))
        XCTAssertFalse(ColumnType.isNarrowing(from: "character varying(10)", to: "text"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "numeric(12,2)", to: "numeric(10,2)"))
        XCTAssertFalse(ColumnType.isNarrowing(from: "numeric(10,2)", to: "numeric(12,2)"))
    }
}

/// The snapshot ritual on real PostgreSQL: clean round trip, and each kind of drift reported.
final class SchemaDriftTests: DRKitTestCase {
    let base = """
        CREATE TABLE public.orders (id int PRIMARY KEY, amount numeric(12,2) DEFAULT 0, note text, placed timestamptz);
        COMMENT ON TABLE public.orders IS 'orders';
        CREATE FUNCTION public.total() RETURNS numeric LANGUAGE sql AS $$ SELECT sum(amount) FROM public.orders $$;
        CREATE TABLE public.alembic_version (version_num varchar(32) NOT NULL);
        """

    func snapshot(_ database: String) throws -> String {
        let path = workDirectory.appendingPathComponent("db/schema.snapshot.sql").path
        let result = try Command.drkit(["schema", "snapshot", "--db", try conninfo(database), "--out", path,
                                        "--iteration", "12", "--changes", "add orders\nand more"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return path
    }

    func diff(_ database: String, _ snapshot: String, _ extra: [String] = []) throws -> CommandResult {
        try Command.drkit(["schema", "diff", "--db", try conninfo(database), "--snapshot", snapshot] + extra)
    }

    func testSnapshotRoundTripIsCleanAcrossPgDumpRuns() throws {
        let db = try newDatabase("drkit_schema_rt", sql: base)
        let path = try snapshot(db)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("-- drkit schema snapshot\n-- iteration: 12\n"))
        XCTAssertTrue(text.contains("-- changes: add orders and more"))
        XCTAssertTrue(text.contains("-- server: PostgreSQL 1"), "the server version is recorded (15 or 18 in the matrix)")
        XCTAssertTrue(text.contains("-- pg_dump: pg_dump (PostgreSQL)"))
        XCTAssertFalse(text.contains("\\restrict"))
        XCTAssertFalse(text.contains("OWNER TO"), "--no-owner")
        for _ in 0..<2 {
            let result = try diff(db, path)
            XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        }
        // The same schema in another database, dumped by another pg_dump run, is no drift either.
        let twin = try newDatabase("drkit_schema_twin", sql: base)
        XCTAssertEqual(try diff(twin, path).status, 0)
    }

    func testEachKindOfDriftIsReported() throws {
        let db = try newDatabase("drkit_schema_base", sql: base)
        let path = try snapshot(db)
        let cases: [(String, String, String)] = [
            ("added column", "ALTER TABLE public.orders ADD COLUMN discount numeric;", "public.orders.discount: column added"),
            ("dropped column", "ALTER TABLE public.orders DROP COLUMN note;", "public.orders.note: column dropped  [DESTRUCTIVE]"),
            ("changed default", "ALTER TABLE public.orders ALTER COLUMN amount SET DEFAULT 1;", "public.orders.amount: definition"),
            ("new index", "CREATE INDEX orders_placed_idx ON public.orders (placed);", "public.orders_placed_idx: added"),
            ("function body", "CREATE OR REPLACE FUNCTION public.total() RETURNS numeric LANGUAGE sql AS $$ SELECT sum(amount) * 2 FROM public.orders $$;", "function   changed   public.total()"),
            ("comment", "COMMENT ON TABLE public.orders IS 'all orders';", "comment    changed"),
            ("narrowed type", "ALTER TABLE public.orders ALTER COLUMN note TYPE varchar(10);", "(narrowed)  [DESTRUCTIVE]"),
        ]
        for (label, change, expected) in cases {
            let variant = try newDatabase("drkit_schema_v", sql: base + change)
            let result = try diff(variant, path)
            XCTAssertEqual(result.status, 1, "\(label): \(result.stdout)\(result.stderr)")
            XCTAssertTrue(result.stdout.contains(expected), "\(label): expected \"\(expected)\" in\n\(result.stdout)")
            XCTAssertTrue(result.stdout.contains("--- \(path)"), "\(label): unified diff shown")
        }
        let reordered = try newDatabase("drkit_schema_reorder", sql: base.replacingOccurrences(
            of: "amount numeric(12,2) DEFAULT 0, note text", with: "note text, amount numeric(12,2) DEFAULT 0"))
        let result = try diff(reordered, path)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.contains("columns reordered"), result.stdout)
    }

    func testExcludeAndErrors() throws {
        let db = try newDatabase("drkit_schema_ex", sql: base)
        let path = try snapshot(db)
        try PostgresClientBridge.execute("ALTER TABLE public.alembic_version ADD COLUMN extra int", in: db)
        XCTAssertEqual(try diff(db, path).status, 1)
        XCTAssertEqual(try diff(db, path, ["--exclude", "public.alembic_*"]).status, 0)
        let missing = try diff(db, "/nonexistent/snapshot.sql")
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("cannot read snapshot"))
        let unreachable = try Command.drkit(["schema", "diff", "--db", "host=127.0.0.1 port=1 dbname=x", "--snapshot", path])
        XCTAssertEqual(unreachable.status, 2)
    }

    /// F8: random bytes or an empty file are bad input (exit 2, one line), not "drift".
    func testGarbageOrEmptySnapshotsAreRefusedNotDiffed() throws {
        let db = try newDatabase("drkit_schema_garbage", sql: "CREATE TABLE t (id int);")
        var random = SystemRandomNumberGenerator()
        let cases: [(String, Data)] = [
            ("random.sql", Data((0..<5000).map { _ in UInt8.random(in: 0...255, using: &random) })),
            ("empty.sql", Data()),
            ("blank.sql", Data("\n  \n".utf8)),
            ("prose.sql", Data("just some notes\nCREATE TABLE maybe;\n".utf8)),
        ]
        for (name, bytes) in cases {
            let path = workDirectory.appendingPathComponent(name).path
            try bytes.write(to: URL(fileURLWithPath: path))
            let result = try diff(db, path)
            assertFailure(result, exitCode: 2, mentions: "snapshot \(path)")
            XCTAssertFalse(result.stdout.contains("drift"), "\(name): \(result.stdout)")
            XCTAssertLessThan(result.stderr.utf8.count, 300, "the bytes are not echoed: \(name)")
        }
    }
}
