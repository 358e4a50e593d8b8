import XCTest
import Foundation
import Archive
import Common
@testable import DRKit

final class BackupIdTests: XCTestCase {
    private func summary(_ id: String, snapshot: Double, started: Double) -> BackupSummary {
        BackupSummary(backupId: id, toolVersion: "t", database: "db", serverVersion: "15", snapshotTime: Date(timeIntervalSince1970: snapshot),
                      startedAt: Date(timeIntervalSince1970: started), finishedAt: Date(timeIntervalSince1970: started + 1),
                      tableCount: 1, objectCount: 3, storedBytes: 10, encrypted: false, keyFingerprint: nil)
    }

    func testIdsCarryMillisecondsAndSortByStartWithinOneSecond() throws {
        let second = Date(timeIntervalSince1970: 1_795_000_000)
        let earlier = BackupId.make(startedAt: second.addingTimeInterval(0.120))
        let later = BackupId.make(startedAt: second.addingTimeInterval(0.121))
        XCTAssertEqual(earlier.count, "20261130T193512345Z-a1b2c3".count)
        XCTAssertTrue(BackupId.isValid(earlier) && BackupId.isValid(later))
        XCTAssertLessThan(earlier, later, "ids made 1 ms apart in one second order by start")
        XCTAssertEqual(BackupId.startTime(of: earlier)!.timeIntervalSince1970, second.timeIntervalSince1970 + 0.120, accuracy: 0.0005)
    }

    func testOlderIdsWithWholeSecondsStayValid() {
        XCTAssertTrue(BackupId.isValid("20260101T000000Z-abcdef"))
        XCTAssertEqual(BackupId.startTime(of: "20260101T000000Z-abcdef"), Timestamps.parseCompact("20260101T000000Z"))
        for bad in ["20260101T000000Z", "20260101T0000001Z-abcdef", "../20260101T000000Z-abcdef", "20260101T000000Z-ABCDEF"] {
            XCTAssertFalse(BackupId.isValid(bad), bad)
        }
    }

    func testNewestFirstFollowsSnapshotThenStartNotTheRandomSuffix() {
        // Two backups in one second with whole-second ids: the suffix says nothing about which came first.
        let first = summary("20260101T000000Z-ffffff", snapshot: 100.010, started: 100.000)
        let second = summary("20260101T000000Z-000000", snapshot: 100.520, started: 100.500)
        XCTAssertEqual([first, second].sorted(by: BackupId.newestFirst).map(\.backupId), [second.backupId, first.backupId])
        // Same snapshot time to the millisecond: the later start is newer.
        let a = summary("20260101T000000Z-ffffff", snapshot: 200, started: 199.1)
        let b = summary("20260101T000000Z-000000", snapshot: 200, started: 199.2)
        XCTAssertEqual([a, b].sorted(by: BackupId.newestFirst).map(\.backupId), [b.backupId, a.backupId])
    }
}
