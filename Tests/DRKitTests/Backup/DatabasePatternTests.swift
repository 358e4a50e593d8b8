import XCTest
import Foundation
import TestSupport
import PostgresClient
@testable import DRKit

/// The pure parts of cluster scope: exclusion patterns, role and setting statements, the large
/// object record stream.
final class DatabasePatternTests: XCTestCase {
    func testExcludeDatabasePatternsFollowPgDumpall() {
        XCTAssertTrue(DatabasePattern.matches("test_*", "test_orders"))
        XCTAssertFalse(DatabasePattern.matches("test_*", "orders_test"))
        XCTAssertTrue(DatabasePattern.matches("db?", "db1"))
        XCTAssertTrue(DatabasePattern.matches("\"Mixed*Case\"", "Mixed*Case"), "quoted: literal, wildcards included")
        XCTAssertFalse(DatabasePattern.matches("\"Mixed*Case\"", "MixedXCase"))
        XCTAssertFalse(DatabasePattern.matches("shop", "Shop"), "case matters, as in pg_dumpall")
    }

    func testRoleAndSettingStatements() {
        let role = ClusterGlobals.Role(name: "App User", superuser: false, inherit: true, createRole: false, createDatabase: true, login: true,
                                       replication: false, bypassRLS: false, connectionLimit: 3, validUntil: "2031-01-01 00:00:00+00",
                                       passwordHash: "SCRAM-SHA-256$4096:abc", comment: nil)
        XCTAssertEqual(GlobalsRestore.createRoleStatement(role),
                       "CREATE ROLE \"App User\" WITH NOSUPERUSER INHERIT NOCREATEROLE CREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 3 VALID UNTIL '2031-01-01 00:00:00+00' PASSWORD 'SCRAM-SHA-256$4096:abc'")
        XCTAssertEqual(GlobalsRestore.setStatementTail("work_mem=8MB"), "\"work_mem\" TO '8MB'")
        XCTAssertEqual(GlobalsRestore.setStatementTail("search_path=\"$user\", app"), "\"search_path\" TO \"$user\", app", "list settings stay lists")
        XCTAssertEqual(GlobalsRestore.setStatementTail("application_name=it's=here"), "\"application_name\" TO 'it''s=here'")
    }

    func testLargeObjectStreamSurvivesEverySplitAndRefusesTruncation() throws {
        var stream: [UInt8] = []
        let pieces: [(UInt32, Int64, [UInt8])] = [(7, 0, Array("hello".utf8)), (8, 0, []), (9, 0, [1, 2, 3]), (9, 3, [4, 5])]
        for (oid, offset, bytes) in pieces { stream += LargeObjects.header(oid: oid, offset: offset, length: bytes.count) + bytes }
        for split in 0...stream.count {
            var seen: [(UInt32, Int64, [UInt8])] = []
            let parser = LargeObjectStreamParser { seen.append(($0, $1, $2)) }
            try stream[..<split].withUnsafeBytes { try parser.write($0) }
            try stream[split...].withUnsafeBytes { try parser.write($0) }
            try parser.finish()
            XCTAssertEqual(seen.map(\.0), [7, 8, 9, 9], "split at \(split)")
            XCTAssertEqual(seen.map(\.2), pieces.map(\.2))
            XCTAssertEqual(seen.map(\.1), [0, 0, 0, 3])
            XCTAssertEqual(parser.largeObjects, 3)
        }
        let truncated = LargeObjectStreamParser { _, _, _ in }
        try stream.dropLast(1).withUnsafeBytes { try truncated.write($0) }
        XCTAssertThrowsError(try truncated.finish())
    }

    func testLargeObjectBatchesKeepBigOnesAlone() {
        let entries = [LargeObjects.Entry(oid: 1, size: 10), LargeObjects.Entry(oid: 2, size: 10), LargeObjects.Entry(oid: 3, size: 500),
                       LargeObjects.Entry(oid: 4, size: 10)]
        XCTAssertEqual(LargeObjects.batches(entries, targetBytes: 100).map { $0.map(\.oid) }, [[1, 2], [3], [4]])
    }
}
