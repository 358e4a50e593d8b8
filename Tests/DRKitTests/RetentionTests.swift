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

    /// An independent oracle: the newest backup of each of the `count` most recent calendar units.
    static func expectedKept(_ times: [Date], daily: Int, weekly: Int, monthly: Int, yearly: Int) -> Set<Date> {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        func newestPer(_ components: Set<Calendar.Component>, _ count: Int) -> [Date] {
            var seen: [DateComponents: Date] = [:]
            for time in times {
                let key = calendar.dateComponents(components, from: time)
                if let existing = seen[key], existing > time { continue }
                seen[key] = time
            }
            return Array(seen.values.sorted(by: >).prefix(count))
        }
        return Set(newestPer([.year, .month, .day], daily) + newestPer([.yearForWeekOfYear, .weekOfYear], weekly)
                   + newestPer([.year, .month], monthly) + newestPer([.year], yearly) + [times.max()!])
    }

    func testCalendarRulesMatchTheOracleOver400Days() {
        var policy = RetentionPolicy()
        (policy.keepDaily, policy.keepWeekly, policy.keepMonthly, policy.keepYearly) = (7, 4, 12, 2)
        let candidates = daily(400)
        let decisions = policy.decide(candidates)
        let kept = Set(decisions.filter(\.keep).map(\.time))
        XCTAssertEqual(kept, Self.expectedKept(candidates.map(\.time), daily: 7, weekly: 4, monthly: 12, yearly: 2))
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

/// `forget --execute` after every simulated daily backup for 400 days, through the library API (the
/// clock is the backups' own snapshot times): the kept set equals the policy's, on both stores.
final class ForgetSimulationTests: XCTestCase {
    private func simulate(_ repository: Repository, days: Int, forgetEvery: Int) throws {
        var policy = RetentionPolicy()
        (policy.keepDaily, policy.keepWeekly, policy.keepMonthly, policy.keepYearly) = (7, 4, 12, 2)
        let first = Date(timeIntervalSince1970: 1_735_732_800)
        var times: [Date] = []
        for day in 0..<days {
            let time = first.addingTimeInterval(Double(day) * 86400)
            try SyntheticBackup.write(at: time, into: repository)
            times.append(time)
            if day % forgetEvery == forgetEvery - 1 || day == days - 1 {
                _ = try Forget.run(repository: repository, policy: policy, keys: KeyOptions(environment: [:]), execute: true)
            }
        }
        let kept = try repository.backups().map(\.summary.snapshotTime)
        XCTAssertEqual(Set(kept), RetentionPolicyTests.expectedKept(times, daily: 7, weekly: 4, monthly: 12, yearly: 2))
        XCTAssertEqual(kept.count, Set(kept).count)
        let folders = Set(try repository.store.list(prefix: "").map { String($0.key.prefix { $0 != "/" }) }.filter(BackupId.isValid))
        XCTAssertEqual(folders.count, kept.count, "nothing of a removed backup is left")
        let verify = VerifyEngine(repository: repository, keys: KeyOptions(environment: [:]), jobs: 2, showProgress: false, console: .silent())
        for file in try repository.backups() { XCTAssertTrue(try verify.run(reference: file.summary.backupId).passed) }
    }

    func testFourHundredDaysOnALocalRepository() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("forget-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try simulate(try Repository.open(directory.path, create: true), days: 400, forgetEvery: 1)
    }

    func testFourHundredDaysOnS3() throws {
        let s3 = try TestServices.s3()
        var settings = StorageSettings()
        settings.environment = s3.environment()
        let repository = try Repository.open("s3://\(s3.bucket)/forget-\(UUID().uuidString.prefix(8).lowercased())", create: true, s3: settings)
        try simulate(repository, days: 400, forgetEvery: 10)
    }
}

/// `drkit forget` as an operator runs it.
final class ForgetCommandTests: DRKitTestCase {
    func testDryRunThenExecuteWithReasonsAuditAndJSON() throws {
        let source = try newDatabase("drkit_forget", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let ids = try (0..<4).map { _ in try backup(source) }
        let dry = try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "2"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertTrue(dry.stdout.contains("keep    \(ids[3])") && dry.stdout.contains("newest, last 1"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("remove  \(ids[0])"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("2 kept, 2 to remove (dry run: pass --execute to remove them)"), dry.stdout)
        XCTAssertEqual(try Repository.open(repo, create: false).backups().count, 4, "a dry run removes nothing")

        let audit = workDirectory.appendingPathComponent("audit.jsonl").path
        let run = try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "2", "--execute", "--json", "--audit-file", audit])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["executed"] as? Bool, true)
        XCTAssertEqual((report["decisions"] as? [[String: Any]])?.filter { $0["keep"] as? Bool == false }.compactMap { $0["backupId"] as? String }.sorted(), [ids[0], ids[1]])
        XCTAssertEqual(try Repository.open(repo, create: false).backups().map(\.summary.backupId), [ids[3], ids[2]])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(repo)/\(ids[0])"), "nothing of a removed backup is left")
        let trail = try Command.drkit(["audit", "verify", "--audit-file", audit])
        XCTAssertEqual(trail.status, 0, trail.stdout + trail.stderr)
        let records = try String(contentsOfFile: audit, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(records.count, 4, "one audit record per decision")
        XCTAssertTrue(records.contains { $0.contains("forget \(ids[0]): removed") }, "\(records)")
        XCTAssertTrue(records.contains { $0.contains("forget \(ids[3]): keep: newest, last 1") }, "\(records)")
    }

    /// Two whole backups, then a one-table backup: keep-last 1 keeps the newest whole backup and the
    /// partial one, each the newest of its series (it used to keep only the partial one).
    func testAPartialBackupNeverStandsInForTheNewestWholeBackup() throws {
        let source = try newDatabase("drkit_forget_partial", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1); CREATE TABLE empty_one (id int);")
        let whole = try (0..<2).map { _ in try backup(source) }
        let partial = try backup(source, extra: ["--table", "public.empty_one"])
        let run = try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "1", "--execute"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("\(source) [--table=public.empty_one]"), run.stdout)
        XCTAssertTrue(run.stdout.contains("2 kept, 1 removed"), run.stdout)
        XCTAssertEqual(Set(try Repository.open(repo, create: false).backups().map(\.summary.backupId)), [whole[1], partial])
    }

    func testPolicyMistakesAreRefusedBeforeTheRepositoryIsRead() throws {
        let missing = workDirectory.appendingPathComponent("no-such-repository").path
        let policy = workDirectory.appendingPathComponent("policy.yaml").path
        try "keep_daly: 30\nkeep_last: 2\n".write(toFile: policy, atomically: true, encoding: .utf8)
        assertFailure(try Command.drkit(["forget", "--repo", missing, "--policy", policy]), exitCode: 2, mentions: "did you mean keep_daily")
        try "keep_within: 30\n".write(toFile: policy, atomically: true, encoding: .utf8)
        assertFailure(try Command.drkit(["forget", "--repo", missing, "--policy", policy]), exitCode: 2, mentions: "unit")
        let bare = try Command.drkit(["forget", "--repo", missing, "--keep-within", "5"])
        XCTAssertEqual(bare.status, 2, bare.stderr)
        XCTAssertTrue(bare.stderr.contains("--keep-within takes a duration with a unit"), bare.stderr)
    }

    func testInterruptedForgetIsFinishedAndForgedSummariesAreRefused() throws {
        let source = try newDatabase("drkit_forget_more", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let ids = try (0..<3).map { _ in try backup(source) }
        // An earlier run stopped after the marker and the manifest: the folder must not be listed, and
        // the next run finishes it.
        try Data("removed by drkit forget\n".utf8).write(to: URL(fileURLWithPath: "\(repo)/\(ids[0])/forgotten"))
        try FileManager.default.removeItem(atPath: "\(repo)/\(ids[0])/manifest.json")
        XCTAssertFalse(try Command.drkit(["list", "--repo", repo]).stdout.contains(ids[0]))
        let run = try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "5", "--execute"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("finished removing \(ids[0])"), run.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(repo)/\(ids[0])"))

        // A summary edited to look old must not steer retention: forget refuses (exit 5).
        let url = URL(fileURLWithPath: "\(repo)/\(ids[2])/manifest.json")
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var summary = json["summary"] as! [String: Any]
        summary["snapshotTime"] = "2000-01-01T00:00:00.000Z"
        json["summary"] = summary
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        assertFailure(try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "1", "--execute"]), exitCode: 5, mentions: "snapshotTime")
        XCTAssertEqual(try Repository.open(repo, create: false).backups().count, 2, "nothing removed")
        assertFailure(try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile]), exitCode: 2, mentions: "keeps nothing")
    }
}

/// SplitMix64 as a `RandomNumberGenerator`, so property tests draw the same cases in every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
