import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

final class ParityEngineTests: DRKitTestCase {
    let schema = """
        CREATE SCHEMA app;
        CREATE TABLE app.orders (id int PRIMARY KEY, amount numeric, note text);
        INSERT INTO app.orders SELECT g, g * 1.5, 'n' || g FROM generate_series(1, 2000) g;
        CREATE TABLE app.customers (id int PRIMARY KEY, name text);
        INSERT INTO app.customers SELECT g, 'c' || g FROM generate_series(1, 50) g;
        CREATE TABLE app.audit_log (id int);
        """

    func parity(_ source: String, _ target: String, _ extra: [String] = []) throws -> (CommandResult, String) {
        let csv = workDirectory.appendingPathComponent("rowcount.csv").path
        let result = try Command.drkit(["parity", "--source", try conninfo(source), "--target", try conninfo(target), "--csv", csv] + extra)
        return (result, (try? String(contentsOfFile: csv, encoding: .utf8)) ?? "")
    }

    func testEqualDatabasesHaveParityAndCSV() throws {
        let a = try newDatabase("drkit_par_a", sql: schema)
        let b = try newDatabase("drkit_par_b", sql: schema)
        let (result, csv) = try parity(a, b, ["--checksum"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = csv.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "schema,table,source_rows,target_rows,match,source_checksum,target_checksum")
        XCTAssertTrue(lines.contains { $0.hasPrefix("app,orders,2000,2000,true,") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("app,audit_log,0,0,true,") })
        XCTAssertEqual(lines.count, 4)
    }

    func testDeletedInsertedUpdatedAndMissingAreCaught() throws {
        let a = try newDatabase("drkit_par_src", sql: schema)
        let deleted = try newDatabase("drkit_par_del", sql: schema + "DELETE FROM app.orders WHERE id = 7;")
        let (r1, csv1) = try parity(a, deleted)
        XCTAssertEqual(r1.status, 1)
        XCTAssertTrue(csv1.contains("app,orders,2000,1999,false"), csv1)
        XCTAssertTrue(r1.stderr.contains("app.orders"), r1.stderr)

        let inserted = try newDatabase("drkit_par_ins", sql: schema + "INSERT INTO app.customers VALUES (999, 'extra');")
        let (r2, csv2) = try parity(a, inserted)
        XCTAssertEqual(r2.status, 1)
        XCTAssertTrue(csv2.contains("app,customers,50,51,false"), csv2)

        let updated = try newDatabase("drkit_par_upd", sql: schema + "UPDATE app.orders SET note = 'changed' WHERE id = 3;")
        XCTAssertEqual(try parity(a, updated).0.status, 0, "counts alone cannot see an update")
        let (r3, csv3) = try parity(a, updated, ["--checksum"])
        XCTAssertEqual(r3.status, 1)
        XCTAssertTrue(r3.stdout.contains("NO (content)"), r3.stdout)
        XCTAssertTrue(csv3.contains("app,orders,2000,2000,false"), csv3)

        let missing = try newDatabase("drkit_par_miss", sql: schema + "DROP TABLE app.audit_log;")
        let (r4, csv4) = try parity(a, missing)
        XCTAssertEqual(r4.status, 1)
        XCTAssertTrue(csv4.contains("app,audit_log,0,,false"), csv4)
        XCTAssertEqual(try parity(a, missing, ["--exclude", "app.audit_*"]).0.status, 0)
        XCTAssertEqual(try parity(a, deleted, ["--tables", "app.customers,app.audit_log"]).0.status, 0)
    }

    func testParityAgainstABackupManifestAndErrors() throws {
        let source = try newDatabase("drkit_par_bk", sql: schema)
        let id = try backup(source)
        let csv = workDirectory.appendingPathComponent("m.csv").path
        let ok = try Command.drkit(["parity", "--source-backup", id, "--repo", repo, "--key-file", keyFile,
                                    "--target", try conninfo(source), "--csv", csv])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        try PostgresClientBridge.execute("DELETE FROM app.customers WHERE id < 3", in: source)
        let bad = try Command.drkit(["parity", "--source-backup", "latest", "--repo", repo, "--key-file", keyFile,
                                     "--target", try conninfo(source), "--csv", csv])
        XCTAssertEqual(bad.status, 1)
        let unreachable = try Command.drkit(["parity", "--source", "host=127.0.0.1 port=1 dbname=x", "--target", try conninfo(source), "--csv", csv])
        XCTAssertEqual(unreachable.status, 2, "errors exit 2")
        XCTAssertFalse(unreachable.stderr.contains(TestServices.password))
    }
}
