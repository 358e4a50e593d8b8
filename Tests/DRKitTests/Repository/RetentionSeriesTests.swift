import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

/// Series: partial and globals-only backups are kept apart from whole ones; policy files and
/// durations are read strictly (issue: forget removed whole backups a partial one stood in for).
final class RetentionSeriesTests: XCTestCase {
    private let start = Date(timeIntervalSince1970: 1_735_732_800)

    func testAPartialBackupIsASeriesOfItsOwn() {
        var policy = RetentionPolicy()
        policy.keepLast = 1
        let partial = RetentionPolicy.series(database: "app", selection: ["--table=public.empty_one"])
        let candidates = [
            RetentionPolicy.Candidate(backupId: "full1", database: "app", time: start),
            RetentionPolicy.Candidate(backupId: "full2", database: "app", time: start.addingTimeInterval(60)),
            RetentionPolicy.Candidate(backupId: "part1", database: "app", series: partial, time: start.addingTimeInterval(120)),
        ]
        let kept = Set(policy.decide(candidates).filter(\.keep).map(\.backupId))
        XCTAssertEqual(kept, ["full2", "part1"])
        XCTAssertEqual(partial, "app [--table=public.empty_one]")
        XCTAssertEqual(RetentionPolicy.series(database: "app", selection: []), "app")
        XCTAssertEqual(RetentionPolicy.series(database: "app", selection: nil), "app")
    }

    /// Random mixes of whole, partial and globals backups of three databases under random policies:
    /// the newest whole backup of every database survives, and the whole series' decisions are the
    /// same as if no partial or globals backup existed.
    func testPartialBackupsNeverCountTowardAWholeSeries() {
        var generator = SeededGenerator(seed: 0x5eed_d2)
        let selections: [[String]] = [["--table=public.a"], ["--table=public.b"], ["--schema=audit"], ["--exclude-table-data=public.log"]]
        for trial in 0..<300 {
            var candidates: [RetentionPolicy.Candidate] = []
            var time = start
            for index in 0..<Int.random(in: 1...40, using: &generator) {
                time = time.addingTimeInterval(Double.random(in: 60...(3 * 86400), using: &generator))
                let database = ["app", "billing", "(globals)"].randomElement(using: &generator)!
                let partial = database != "(globals)" && Bool.random(using: &generator)
                let series = partial ? RetentionPolicy.series(database: database, selection: selections.randomElement(using: &generator)!) : database
                candidates.append(.init(backupId: String(format: "b%03d", index), database: database, series: series, time: time))
            }
            var policy = RetentionPolicy()
            policy.keepLast = Int.random(in: 0...3, using: &generator)
            policy.keepDaily = Int.random(in: 0...4, using: &generator)
            policy.keepWeekly = Int.random(in: 0...2, using: &generator)
            policy.keepWithin = Bool.random(using: &generator) ? Double.random(in: 0...(5 * 86400), using: &generator) : nil
            let decisions = policy.decide(candidates)
            XCTAssertEqual(decisions.count, candidates.count)
            for database in ["app", "billing"] {
                let whole = candidates.filter { $0.series == database }
                guard let newest = whole.max(by: { $0.time < $1.time }) else { continue }
                XCTAssertTrue(decisions.first { $0.backupId == newest.backupId }!.keep, "trial \(trial): newest whole backup of \(database) removed")
                let alone = policy.decide(whole).map { [$0.backupId: $0.keep] }
                let mixed = decisions.filter { $0.series == database }.map { [$0.backupId: $0.keep] }
                XCTAssertEqual(alone, mixed, "trial \(trial): partial backups changed the decisions about \(database)'s whole backups")
            }
            for series in Set(candidates.map(\.series)) {
                let newest = candidates.filter { $0.series == series }.max { $0.time < $1.time }!
                XCTAssertTrue(decisions.first { $0.backupId == newest.backupId }!.keep, "trial \(trial): newest of \(series) removed")
            }
        }
    }

    private func policyFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("retention-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testUnknownPolicyKeysAreRefusedWithASuggestion() throws {
        let path = try policyFile("keep_daly: 30\nkeep_last: 2\n")
        XCTAssertThrowsError(try RetentionPolicy.load(path: path)) { error in
            let e = error as? DRKitError
            XCTAssertEqual(e?.code, .usage)
            XCTAssertTrue(e?.message.contains("unknown key keep_daly (did you mean keep_daily?)") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try RetentionPolicy.load(path: try policyFile("keep_last: 2\nkeepers: 4\n"))) { error in
            XCTAssertTrue((error as? DRKitError)?.message.contains("unknown key keepers") ?? false, "\(error)")
        }
        XCTAssertEqual(StrictKeys.suggestion(for: "timezon", among: RetentionPolicy.fileKeys), "timezone")
        XCTAssertNil(StrictKeys.suggestion(for: "retain", among: RetentionPolicy.fileKeys))
    }

    func testADurationWithoutAUnitIsRefused() throws {
        XCTAssertThrowsError(try RetentionPolicy.load(path: try policyFile("keep_within: 30\n"))) { error in
            XCTAssertEqual((error as? DRKitError)?.code, .usage)
            XCTAssertTrue("\(error)".contains("unit"), "\(error)")
        }
        XCTAssertEqual(try RetentionPolicy.load(path: try policyFile("keep_within: 30d\n")).keepWithin, 30 * 86400)
    }
}
