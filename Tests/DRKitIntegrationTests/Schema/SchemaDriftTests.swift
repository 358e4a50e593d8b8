import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

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
