import XCTest
import Foundation
import Archive
@testable import DRKit

/// The anomaly check against the previous backup, by value.
final class ShrinkCheckTests: XCTestCase {
    private func manifest(_ id: String, _ tables: [(String, Int64, Int64)]) -> BackupManifest {
        let empty = ObjectRecord(name: "schema/pre-data.sql", size: 0, sha256: "", plainBytes: 0, rows: 0)
        let source = SourceRecord(database: "app", serverVersion: "15", serverVersionNum: 150000, systemIdentifier: "1", encoding: "UTF8")
        return BackupManifest(backupId: id, toolVersion: "t", source: source, snapshotTime: Date(), startedAt: Date(), finishedAt: Date(),
                              compression: .init(algorithm: "zstd", level: 1), preData: empty, postData: empty,
                              tables: tables.map { name, rows, bytes in
                                  TableRecord(schema: "public", name: name, kind: "table", columns: ["id"], rows: rows, plainBytes: bytes,
                                              objects: [ObjectRecord(name: "data/\(name)", size: bytes / 4, sha256: "", plainBytes: bytes, rows: rows)])
                              },
                              sequences: [], materializedViews: [])
    }

    func testTablesThatLostMoreThanTheThresholdOrVanishedAreNamed() {
        let previous = manifest("old", [("orders", 1000, 100_000), ("users", 100, 10_000), ("audit", 50, 5_000), ("steady", 10, 1_000)])
        let now = manifest("new", [("orders", 400, 40_000), ("users", 95, 9_500), ("steady", 10, 300), ("fresh", 5, 500)])
        let report = ShrinkCheck.compare(now, with: previous, threshold: 0.2)
        XCTAssertEqual(report.previousBackupId, "old")
        XCTAssertEqual(report.tables.map(\.name), ["audit", "steady", "orders"],
                       "gone (100%), bytes down 70% with rows steady, rows down 60%; a 5% drop and a new table are not named")
        XCTAssertEqual(report.rowsRatio, 510.0 / 1160.0, accuracy: 1e-9)
        XCTAssertTrue(ShrinkCheck.describe(report).hasPrefix("3 table(s) shrank by more than 20% since backup old: public.audit 50 → 0 rows (-100%)"),
                      ShrinkCheck.describe(report))
    }

    func testNoPreviousRowsIsNoShrink() {
        let report = ShrinkCheck.compare(manifest("new", [("t", 10, 100)]), with: manifest("old", [("t", 0, 0)]), threshold: 0.2)
        XCTAssertTrue(report.tables.isEmpty)
        XCTAssertEqual(report.rowsRatio, 1)
    }
}
