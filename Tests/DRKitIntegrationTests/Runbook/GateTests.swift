import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

/// The runbook engine on real processes, files and PostgreSQL: gates, audit trails, env checks.
final class GateTests: DRKitTestCase {
    var auditFile: String { workDirectory.appendingPathComponent("audit.jsonl").path }
    var evidence: String { workDirectory.appendingPathComponent("evidence").path }

    func writeChecklist(_ yaml: String) throws -> String {
        let path = workDirectory.appendingPathComponent("checklist-\(UUID().uuidString.prefix(6)).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func gate(_ checklist: String, _ extra: [String] = [], env: [String: String] = [:], directory: String? = nil) throws -> CommandResult {
        try Command.drkit(["gate", checklist, "--audit-file", auditFile, "--evidence-dir", evidence, "--operator", "alice"] + extra,
                          environment: env, directory: directory)
    }

    func evidenceJSON() throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: evidence + "/evidence.json"))) as? [String: Any])
    }

    func auditRecords() throws -> [[String: Any]] {
        let result = try Command.drkit(["audit", "list", "--audit-file", auditFile, "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
    }

    func testThirdStepFailureStopsTheRunWithThreeAuditRecords() throws {
        let checklist = try writeChecklist("""
            name: five-steps
            steps:
              - {name: one, kind: command, run: "echo one"}
              - {name: two, kind: command, run: "echo two"}
              - {name: three, kind: command, run: "echo broken >&2; exit 3"}
              - {name: four, kind: command, run: "touch \(workDirectory.path)/four-ran"}
              - {name: five, kind: attest}
            """)
        let result = try gate(checklist)
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        XCTAssertTrue(result.stderr.contains("failed at step three"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: workDirectory.appendingPathComponent("four-ran").path), "step four never ran")
        let records = try auditRecords()
        XCTAssertEqual(records.count, 3)
        XCTAssertEqual(records.map { $0["step"] as? String }, ["one", "two", "three"])
        XCTAssertEqual(records.map { $0["result"] as? String }, ["passed", "passed", "failed"])
        XCTAssertEqual(records.last?["exit_code"] as? Int, 3)
        XCTAssertEqual(Set(records.compactMap { $0["run_id"] as? String }).count, 1)
        XCTAssertEqual(records.first?["operator"] as? String, "alice")
        XCTAssertEqual((records.first?["output_sha256"] as? String)?.count, 64)

        let report = try evidenceJSON()
        XCTAssertEqual(report["result"] as? String, "failed")
        XCTAssertEqual(report["failedStep"] as? String, "three")
        let steps = try XCTUnwrap(report["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.map { $0["result"] as? String }, ["passed", "passed", "failed", "skipped", "skipped"])
        XCTAssertEqual(steps[2]["figure"] as? String, "exit 3")
        XCTAssertEqual(steps[2]["rule"] as? String, "exit 0")
        XCTAssertNotNil(report["toolVersion"])
        let markdown = try String(contentsOfFile: evidence + "/gate-record.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("# Gate record: five-steps"))
        XCTAssertTrue(markdown.contains("| 3 | three | command | failed | exit 3 |"), markdown)
        XCTAssertTrue(markdown.contains("Operator: alice"))
    }

    func testAdvisoryFailureContinuesAndAttestationsAreRecorded() throws {
        let checklist = try writeChecklist("""
            name: advisory
            steps:
              - {name: first, kind: command, run: "true"}
              - {name: optional, kind: command, run: "exit 1", advisory: true}
              - {name: output-check, kind: command, run: "echo version 2.3.0", expect_output: "version 2\\\\.[0-9]+"}
              - {name: owner-named, kind: attest, prompt: "Rollback owner named?"}
            """)
        let missing = try gate(checklist)
        XCTAssertEqual(missing.status, 1, "an attest step without --attest fails when not interactive")
        XCTAssertTrue(missing.stdout.contains("not attested: pass --attest owner-named"), missing.stdout)

        let result = try gate(checklist, ["--attest", "owner-named=Bob owns rollback"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("WARN optional"), result.stdout)
        let steps = try XCTUnwrap(try evidenceJSON()["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.map { $0["result"] as? String }, ["passed", "advisory-failed", "passed", "passed"])
        XCTAssertTrue((steps[3]["summary"] as? String ?? "").contains("attested by alice: Bob owns rollback"))
        XCTAssertEqual(try auditRecords().count, 4 + 4, "both runs audited")
        XCTAssertEqual(try gate(checklist, ["--attest", "not-a-step"]).status, 2)
        let json = try gate(checklist, ["--attest", "owner-named", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(report?["result"] as? String, "passed", "stdout is only the JSON report: \(json.stdout)")
        XCTAssertTrue(json.stderr.contains("] PASS first"), "step lines go to stderr")
    }

    func testHangingCommandIsKilledAtItsTimeout() throws {
        let marker = workDirectory.appendingPathComponent("survived").path
        let childPid = workDirectory.appendingPathComponent("child.pid").path
        let checklist = try writeChecklist("""
            name: hang
            steps:
              - name: hangs
                kind: command
                run: "(sleep 6; touch \(marker)) & echo $! > \(childPid); sleep 60"
                timeout: 1s
            """)
        let start = Date()
        let result = try gate(checklist)
        XCTAssertLessThan(Date().timeIntervalSince(start), 15)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.contains("killed after 1s (timeout)"), result.stdout)
        // The background child is in the killed process group: it is gone (once reaped), not sleeping on.
        let pid = try XCTUnwrap(Int32(try String(contentsOfFile: childPid, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let deadline = Date().addingTimeInterval(5)
        while kill(pid, 0) == 0 && Date() < deadline { usleep(20_000) }
        XCTAssertNotEqual(kill(pid, 0), 0, "the whole process group was killed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
    }

    func testDryRunAndInvalidChecklists() throws {
        let checklist = try writeChecklist("""
            name: plan
            steps:
              - {name: schema, kind: schema-diff, db: "${SOME_DATABASE_URL}", snapshot: db/schema.snapshot.sql}
              - {name: tests, kind: command, run: "swift test", timeout: 30m}
            """)
        let plan = try gate(checklist, ["--dry-run"])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("1. schema [schema-diff]: no drift against db/schema.snapshot.sql"), plan.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: auditFile), "a dry run records nothing")
        let unset = try gate(checklist)
        XCTAssertEqual(unset.status, 1)
        XCTAssertTrue(unset.stdout.contains("SOME_DATABASE_URL"), unset.stdout)
        let bad = try writeChecklist("name: bad\nsteps:\n  - {name: x, kind: teleport}\n")
        let invalid = try gate(bad)
        XCTAssertEqual(invalid.status, 2)
        XCTAssertTrue(invalid.stderr.contains("unknown kind \"teleport\""), invalid.stderr)
        let missingField = try writeChecklist("name: bad\nsteps:\n  - {name: x, kind: command}\n")
        XCTAssertTrue(try gate(missingField).stderr.contains("needs run"))
    }

    func testJSONLinesAuditTrailDetectsEditsRemovalsAndSwaps() throws {
        let checklist = try writeChecklist("""
            name: audited
            steps:
              - {name: a, kind: command, run: "echo a"}
              - {name: b, kind: command, run: "echo b"}
              - {name: c, kind: command, run: "echo c"}
            """)
        XCTAssertEqual(try gate(checklist).status, 0)
        XCTAssertEqual(try gate(checklist).status, 0)
        let verify = { try Command.drkit(["audit", "verify", "--audit-file", self.auditFile]) }
        XCTAssertEqual(try verify().status, 0)
        let original = try String(contentsOfFile: auditFile, encoding: .utf8)
        let lines = original.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 6)
        let tamperings: [(String, [String])] = [
            ("edited", lines.enumerated().map { $0.offset == 2 ? $0.element.replacingOccurrences(of: "\"passed\"", with: "\"failed\"") : $0.element }),
            ("edited operator", lines.enumerated().map { $0.offset == 0 ? $0.element.replacingOccurrences(of: "alice", with: "mallory") : $0.element }),
            ("removed middle", lines.enumerated().filter { $0.offset != 3 }.map(\.element)),
            ("removed last", Array(lines.dropLast())),
            ("removed first", Array(lines.dropFirst())),
            ("swapped", [lines[0], lines[2], lines[1]] + lines[3...]),
        ]
        for (label, tampered) in tamperings {
            try (tampered.joined(separator: "\n") + "\n").write(toFile: auditFile, atomically: true, encoding: .utf8)
            let result = try verify()
            XCTAssertEqual(result.status, 1, "\(label): \(result.stdout)")
            XCTAssertTrue(result.stdout.contains("TAMPERED"), label)
        }
        try original.write(toFile: auditFile, atomically: true, encoding: .utf8)
        XCTAssertEqual(try verify().status, 0, "intact again")
    }

    func testPostgresAuditTrail() throws {
        let auditDb = try newDatabase("drkit_audit", sql: "")
        let checklist = try writeChecklist("""
            name: pg-audited
            steps:
              - {name: a, kind: command, run: "true"}
              - {name: b, kind: command, run: "false"}
            """)
        let result = try Command.drkit(["gate", checklist, "--audit-db", try conninfo(auditDb), "--operator", "carol"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM runbook_executions WHERE operator = 'carol'", in: auditDb), "2")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT value FROM drkit_audit_meta WHERE key = 'schema_version'", in: auditDb), "1")
        let verify = { try Command.drkit(["audit", "verify", "--audit-db", try self.conninfo(auditDb)]) }
        XCTAssertEqual(try verify().status, 0)
        let list = try Command.drkit(["audit", "list", "--audit-db", try conninfo(auditDb)])
        XCTAssertTrue(list.stdout.contains("pg-audited  #2 b  failed  exit 1  by carol"), list.stdout)
        try PostgresClientBridge.execute("UPDATE runbook_executions SET result = 'passed' WHERE step = 'b'", in: auditDb)
        XCTAssertEqual(try verify().status, 1)
        try PostgresClientBridge.execute("UPDATE runbook_executions SET result = 'failed' WHERE step = 'b'", in: auditDb)
        XCTAssertEqual(try verify().status, 0)
        try PostgresClientBridge.execute("DELETE FROM runbook_executions WHERE step = 'b'", in: auditDb)
        XCTAssertEqual(try verify().status, 1, "a removed last record is caught by the head marker")
    }
}
