import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

/// Retention decisions by value, and `forget` over 400 simulated days of daily backups on both stores.
final class RetentionPolicyTests: XCTestCase {
    private let day: TimeInterval = 86400
    private let start = Date(timeIntervalSince1970: 1_735_732_800)  // 2025-01-01T12:00:00Z

    private func daily(_ days: Int, database: String = "app") -> [RetentionPolicy.Candidate] {
        (0..<days).map { RetentionPolicy.Candidate(backupId: String(format: "b%04d", $0), database: database, time: start.addingTimeInterval(Double($0) * day)) }
    }

    func testCalendarRulesMatchTheOracleOver400Days() {
        var policy = RetentionPolicy()
        (policy.keepDaily, policy.keepWeekly, policy.keepMonthly, policy.keepYearly) = (7, 4, 12, 2)
        let candidates = daily(400)
        let decisions = policy.decide(candidates)
        let kept = Set(decisions.filter(\.keep).map(\.time))
        XCTAssertEqual(kept, RetentionOracle.expectedKept(candidates.map(\.time), daily: 7, weekly: 4, monthly: 12, yearly: 2))
        XCTAssertEqual(decisions.count, 400)
        let newest = decisions.first!
        XCTAssertEqual(newest.backupId, "b0399")
        XCTAssertEqual(newest.reasons, ["newest", "daily 2026-02-04", "weekly 2026-W06", "monthly 2026-02", "yearly 2026"])
        XCTAssertEqual(decisions.first { $0.backupId == "b0364" }?.reasons, ["monthly 2025-12", "yearly 2025"], "the last backup of 2025")
        XCTAssertTrue(decisions.filter { !$0.keep }.allSatisfy(\.reasons.isEmpty))
    }

    func testLastWithinAndDatabasesAreSeparate() {
        var policy = RetentionPolicy()
        policy.keepLast = 3
        policy.keepWithin = 5 * day
        let decisions = policy.decide(daily(20) + daily(2, database: "billing"))
        XCTAssertEqual(decisions.filter { $0.database == "app" && $0.keep }.map(\.backupId), ["b0019", "b0018", "b0017", "b0016", "b0015", "b0014"])
        XCTAssertEqual(decisions.first { $0.backupId == "b0014" && $0.database == "app" }?.reasons, ["within 5d"])
        XCTAssertEqual(decisions.filter { $0.database == "billing" }.map(\.keep), [true, true], "another database's backups are judged on their own")
    }

    func testNewestIsAlwaysKeptAndEmptyPoliciesAreRefused() throws {
        var policy = RetentionPolicy()
        policy.keepYearly = 1
        let decisions = policy.decide([RetentionPolicy.Candidate(backupId: "only", database: "db", time: start)])
        XCTAssertEqual(decisions.map(\.keep), [true])
        XCTAssertThrowsError(try RetentionPolicy().validate())
        var negative = RetentionPolicy()
        negative.keepLast = -1
        XCTAssertThrowsError(try negative.validate())
        var zone = RetentionPolicy()
        zone.keepDaily = 1
        zone.timeZone = "Mars/Olympus"
        XCTAssertThrowsError(try zone.validate())
    }

    func testDaysFollowTheTimeZone() {
        // 21:30 and 22:30 UTC on 1 June: the same UTC day, two days in Berlin (UTC+2 in summer).
        let late = Date(timeIntervalSince1970: 1_748_813_400)   // 2025-06-01T21:30:00Z
        let later = late.addingTimeInterval(3600)
        let candidates = [RetentionPolicy.Candidate(backupId: "a", database: "db", time: late), .init(backupId: "b", database: "db", time: later)]
        var policy = RetentionPolicy()
        policy.keepDaily = 2
        XCTAssertEqual(policy.decide(candidates).map(\.keep), [true, false], "one UTC day")
        policy.timeZone = "Europe/Berlin"
        XCTAssertEqual(policy.decide(candidates).map(\.reasons), [["newest", "daily 2025-06-02"], ["daily 2025-06-01"]])
    }

    func testPolicyFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("retention-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "keep_daily: 7\nkeep_weekly: 4\nkeep_within: 36h\ntimezone: Europe/Berlin\n".write(toFile: path, atomically: true, encoding: .utf8)
        let policy = try RetentionPolicy.load(path: path)
        XCTAssertEqual(policy.keepDaily, 7)
        XCTAssertEqual(policy.keepWithin, 36 * 3600)
        XCTAssertEqual(policy.timeZone, "Europe/Berlin")
        try "keep_within: soon\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RetentionPolicy.load(path: path))
        let shipped = try RetentionPolicy.load(path: TestServices.packageRoot + "/manifests/retention.yaml")
        XCTAssertNoThrow(try shipped.validate())
        XCTAssertEqual([shipped.keepDaily, shipped.keepWeekly, shipped.keepMonthly, shipped.keepYearly], [7, 4, 12, 2])
    }
}
