import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

/// The 30-day autonomy rehearsal (issue "unattended operation"): 30 simulated days on the test cluster
/// and a repository, through the library API with an injected clock (no CLI flag can change recorded
/// times). Every day the database grows and a backup and a forget run; a verify runs weekly and a drill
/// on day 28; the storage is unreachable on day 9 and the database down on day 17. Writes the report
/// described in docs/autonomy-report.md into the test's work directory and prints it.
final class AutonomyTests: DRKitTestCase {
    struct Day {
        var day: Int
        var date: Date
        var backup: String
        var backupSuccessMetric: String
        var lastSuccessMetric: String
        var forget: String
        var extra: String
    }

    func testThirtySimulatedDaysOnTheirOwn() throws {
        let database = try newDatabase("drkit_autonomy", sql: "CREATE TABLE events (id bigint, day int, payload text);")
        let conninfo = try conninfo(database)
        let down = try unreachableConninfo(database)
        let store = FencedStore(try FileStore(root: URL(fileURLWithPath: repo), create: true))
        let repository = Repository(store: store)
        let audit = try JSONLinesAuditStore(path: workDirectory.appendingPathComponent("audit.jsonl").path)
        let keys = KeyOptions(keyFile: keyFile)
        var policy = RetentionPolicy()
        policy.keepDaily = 7
        policy.keepWeekly = 4
        let metricsFile = workDirectory.appendingPathComponent("drkit_backup.prom").path
        let publisher = MetricsPublisher(file: metricsFile)
        let first = Timestamps.parse("2026-11-01T01:30:00.000Z")!
        let storageDownDay = 9, databaseDownDay = 17
        var days: [Day] = []
        var backedUp: [(id: String, time: Date)] = []
        var expectedAuditRuns = 0

        for day in 1...30 {
            let date = first.addingTimeInterval(Double(day - 1) * 86400)
            try PostgresClientBridge.execute("INSERT INTO events SELECT g, \(day), md5(g::text) FROM generate_series(\(day * 1000), \(day * 1000 + 999)) g", in: database)
            if day == storageDownDay { store.fence(reason: "storage unreachable (simulated outage on day \(day))") }

            var options = BackupOptions(conninfo: day == databaseDownDay ? down : conninfo, key: try keys.resolve())
            options.showProgress = false
            options.clock = { date }
            var backupLine: String
            var result: BackupResult?
            do {
                result = try BackupEngine(options: options, repository: repository, console: .silent()).run()
                backupLine = "ok \(result!.summary.backupId), \(result!.manifest.tables.reduce(0) { $0 + $1.rows }) rows"
                backedUp.append((result!.summary.backupId, result!.manifest.snapshotTime))
            } catch {
                backupLine = "FAILED (exit \(DRKitError.wrap(error).code.exitCode)): \(DRKitError.wrap(error).message.prefix(80))"
            }
            let report = CommandMetrics.backup(database: database, repository: repository.store.location, result: result,
                                               startedAt: date, finishedAt: date.addingTimeInterval(60), inventory: nil)
            XCTAssertEqual(publisher.publish(report), [])
            let metrics = try String(contentsOfFile: metricsFile, encoding: .utf8)
            let success = value(of: "drkit_backup_success", in: metrics) ?? "-"
            let lastSuccess = value(of: "drkit_backup_last_success_timestamp_seconds", in: metrics) ?? "-"

            var forgetLine = "skipped (storage unreachable)"
            if day != storageDownDay {
                let forgotten = try Forget.run(repository: repository, policy: policy, keys: keys, execute: true, audit: audit,
                                               operatorName: "autonomy", now: date)
                expectedAuditRuns += forgotten.decisions.count
                forgetLine = "\(forgotten.kept.count) kept, \(forgotten.removed.count) removed"
            }
            var extra = ""
            if day % 7 == 0 {
                let verified = try VerifyEngine(repository: repository, keys: keys, showProgress: false, console: .silent()).run(reference: "latest")
                XCTAssertTrue(verified.passed, "day \(day): weekly verify")
                extra = "verify \(verified.backupId): \(verified.passed ? "passed" : "FAILED")"
            }
            if day == 28 {
                var scenario = DrillScenario(name: "autonomy-day-28", repo: repo)
                scenario.keyFile = keyFile
                scenario.source = conninfo
                scenario.backup = "latest"
                var drillOptions = DrillRunner.Options(scenario: scenario, scenarioFile: nil, evidenceDirectory: workDirectory.appendingPathComponent("evidence/2026-11").path,
                                                       metricsFile: nil, operatorName: "autonomy")
                drillOptions.environment = [:]
                let drill = try DrillRunner(options: drillOptions, audit: audit, console: .silent()).run()
                XCTAssertEqual(drill.result, "passed", "\(drill.failedCriteria)")
                expectedAuditRuns += drill.phases.filter { $0.result != "skipped" }.count
                extra = "drill \(drill.result), RTO \(Format.seconds(drill.rtoSeconds ?? 0)) s"
            }
            if day == storageDownDay { store.unfence() }
            days.append(Day(day: day, date: date, backup: backupLine, backupSuccessMetric: success, lastSuccessMetric: lastSuccess,
                            forget: forgetLine, extra: extra))
        }

        // Failures show exactly on their days, the next day's success right after, and a failure never
        // moves the last success time.
        for d in days {
            let failedDay = d.day == storageDownDay || d.day == databaseDownDay
            XCTAssertEqual(d.backupSuccessMetric, failedDay ? "0" : "1", "day \(d.day)")
            if failedDay, let before = days.first(where: { $0.day == d.day - 1 }) {
                XCTAssertEqual(d.lastSuccessMetric, before.lastSuccessMetric, "day \(d.day) kept the last success")
            }
        }
        XCTAssertEqual(backedUp.count, 28)

        // The retention set on day 30 is the policy's over every backup that was taken.
        let candidates = backedUp.map { RetentionPolicy.Candidate(backupId: $0.id, database: database, time: $0.time) }
        let expected = Set(policy.decide(candidates).filter(\.keep).map(\.backupId))
        let kept = try repository.backups().map(\.summary.backupId)
        XCTAssertEqual(Set(kept), expected)
        for id in kept {
            XCTAssertTrue(try VerifyEngine(repository: repository, keys: keys, showProgress: false, console: .silent()).run(reference: id).passed, id)
        }
        let records = try audit.records()
        XCTAssertEqual(records.count, expectedAuditRuns, "every forget decision and drill phase is in the audit trail")
        XCTAssertTrue(try AuditTrail.verify(audit).passed, "audit chain intact")

        let report = Self.report(days, kept: kept.count, policy: policy, auditRecords: records.count)
        try report.write(to: workDirectory.appendingPathComponent("autonomy-report.md"), atomically: true, encoding: .utf8)
        print(report)
    }

    private func value(of metric: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(metric + "{") }.flatMap { $0.split(separator: " ").last.map(String.init) }
    }

    static func report(_ days: [Day], kept: Int, policy: RetentionPolicy, auditRecords: Int) -> String {
        var lines = ["# drkit autonomy rehearsal: 30 simulated days", "",
                     "Policy: keep_daily \(policy.keepDaily), keep_weekly \(policy.keepWeekly). Kept on day 30: \(kept) backups, all verified.",
                     "Audit trail: \(auditRecords) records, chain intact.", "",
                     "| day | date | backup | drkit_backup_success | last success | forget | also |", "|---|---|---|---|---|---|---|"]
        lines += days.map { d in
            "| \(d.day) | \(Timestamps.iso8601(d.date).prefix(10)) | \(d.backup.replacingOccurrences(of: "|", with: "/")) | \(d.backupSuccessMetric) | \(d.lastSuccessMetric) | \(d.forget) | \(d.extra) |"
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
