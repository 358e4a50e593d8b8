import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

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
