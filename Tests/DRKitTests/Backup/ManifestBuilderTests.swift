import XCTest
import Foundation
import Archive
import Common
@testable import DRKit

final class ManifestBuilderTests: XCTestCase {
    private func record(_ name: String, rows: Int64, size: Int64) -> ObjectRecord {
        ObjectRecord(name: name, size: size, sha256: String(repeating: "0", count: 64), plainBytes: rows * 10, rows: rows)
    }

    private func inputs(written: WrittenObjects, fingerprint: String? = "abc") -> ManifestBuilder.Inputs {
        var catalog = Catalog()
        catalog.tables = [CatalogTable(schema: "s", name: "big", kind: "table", columns: ["id"], heapBytes: 0),
                          CatalogTable(schema: "s", name: "empty", kind: "table", columns: ["id"], heapBytes: 0)]
        catalog.materializedViews = [(schema: "s", name: "mv", populated: false)]
        let t = Date(timeIntervalSince1970: 1_795_000_000)
        return .init(backupId: "20261130T000000000Z-abcdef", startedAt: t, finishedAt: t.addingTimeInterval(5), snapshotTime: t.addingTimeInterval(0.2),
                     source: SourceRecord(database: "app", serverVersion: "15.18", serverVersionNum: 150018, systemIdentifier: "7", encoding: "UTF8"),
                     catalog: catalog, sequences: [SequenceRecord(schema: "s", name: "seq", lastValue: "42", isCalled: true)],
                     written: written, codec: Codec(algorithm: .zstd, level: 1), keyFingerprint: fingerprint)
    }

    func testChunksOrderByIndexAndTotalsAddUp() throws {
        var written = WrittenObjects()
        written.ddl = ["pre-data": record("schema/pre-data.sql.zst.enc", rows: 0, size: 100), "post-data": record("schema/post-data.sql.zst.enc", rows: 0, size: 50)]
        written.chunks[0] = [(2, record("data/00000.0002.copy.zst.enc", rows: 3, size: 30)), (0, record("data/00000.0000.copy.zst.enc", rows: 5, size: 70)),
                             (1, record("data/00000.0001.copy.zst.enc", rows: 4, size: 40))]
        let (manifest, summary) = try ManifestBuilder.build(inputs(written: written))
        XCTAssertEqual(manifest.tables[0].objects.map(\.name), ["data/00000.0000.copy.zst.enc", "data/00000.0001.copy.zst.enc", "data/00000.0002.copy.zst.enc"],
                       "chunks in index order, whatever order they finished in")
        XCTAssertEqual(manifest.tables[0].rows, 12)
        XCTAssertEqual(manifest.tables[0].plainBytes, 120)
        XCTAssertEqual(manifest.tables[1].objects, [], "a table with no rows still has its record")
        XCTAssertEqual(manifest.compression, .init(algorithm: "zstd", level: 1))
        XCTAssertEqual(manifest.materializedViews.map(\.populated), [false])
        XCTAssertEqual(summary.objectCount, 5)
        XCTAssertEqual(summary.storedBytes, 290)
        XCTAssertEqual(summary.tableCount, 2)
        XCTAssertTrue(summary.encrypted)
        XCTAssertEqual(summary.snapshotTime, manifest.snapshotTime)
        XCTAssertFalse(try ManifestBuilder.build(inputs(written: written, fingerprint: nil)).1.encrypted)
    }

    func testMissingDDLIsAFailureNotAnEmptySchema() {
        var written = WrittenObjects()
        written.ddl = ["pre-data": record("schema/pre-data.sql.zst.enc", rows: 0, size: 1)]
        XCTAssertThrowsError(try ManifestBuilder.build(inputs(written: written)))
    }
}
