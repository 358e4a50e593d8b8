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
