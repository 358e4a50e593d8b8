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
        let checklist = try writeChecklist("""
            name: hang
            steps:
              - name: hangs
                kind: command
                run: "(sleep 6; touch \(marker)) & sleep 60"
                timeout: 1s
            """)
        let start = Date()
        let result = try gate(checklist)
        XCTAssertLessThan(Date().timeIntervalSince(start), 15)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.contains("killed after 1s (timeout)"), result.stdout)
        Thread.sleep(forTimeInterval: 6.5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the whole process group was killed")
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

final class EnvCheckTests: DRKitTestCase {
    var secrets: [String] { EnvCheckTests.secrets }
    var good: [String: String] { EnvCheckTests.goodEnvironment }

    static let secrets = ["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_BQokikJOvBiI2HlWgH4olfQ2", "whsec_prodAAAAAAAAAAAAAAAAAAAA",
                   "whsec_stagingBBBBBBBBBBBBBBBBBB"]

    func envFile(_ name: String, _ values: [String: String]) throws -> String {
        let path = workDirectory.appendingPathComponent(name).path
        try values.map { "export \($0.key)=\"\($0.value)\"" }.sorted().joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static var goodEnvironment: [String: String] {
        ["STRIPE_API_KEY_PROD": secrets[0], "STRIPE_API_KEY_STAGING": secrets[1],
         "STRIPE_WEBHOOK_SECRET_PROD": secrets[2], "STRIPE_WEBHOOK_SECRET_STAGING": secrets[3],
         "INGESTION_ENDPOINT_URL_PROD": "https://api.provider.com/v2/ingest?token=\(secrets[2])",
         "INGESTION_ENDPOINT_URL_STAGING": "https://user:\(secrets[3])@staging.provider.com/v2/ingest"]
    }

    func check(_ file: String) throws -> CommandResult {
        try Command.drkit(["env", "check", "--rules", TestServices.packageRoot + "/manifests/env-separation.yaml", "--env-file", file])
    }

    func assertNoSecret(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        for secret in secrets + ["4eC39HqLyjWDarjtT1zdp7dc", "BQokikJOvBiI2HlWgH4olfQ2"] {
            XCTAssertFalse(text.contains(secret), "secret leaked: \(text)", file: file, line: line)
        }
    }

    func testGoodEnvironmentPasses() throws {
        let result = try check(try envFile("good.env", good))
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("8 of 8 rules pass"), result.stdout)
        assertNoSecret(result.stdout + result.stderr)
    }

    func testBadEnvironmentFailsWithMaskedHints() throws {
        var bad = good
        bad["STRIPE_API_KEY_STAGING"] = secrets[0]                       // same key in both environments
        bad["STRIPE_API_KEY_PROD"] = secrets[0]
        bad["STRIPE_WEBHOOK_SECRET_STAGING"] = ""                         // empty
        bad["INGESTION_ENDPOINT_URL_PROD"] = "https://sandbox.provider.com/ingest"
        let result = try check(try envFile("bad.env", bad))
        XCTAssertEqual(result.status, 1)
        let out = result.stdout
        XCTAssertTrue(out.contains("FAIL stripe-api-keys-differ: STRIPE_API_KEY_PROD and STRIPE_API_KEY_STAGING have the same value (sk_live_…(32 chars))"), out)
        XCTAssertTrue(out.contains("FAIL staging-stripe-key-is-test: STRIPE_API_KEY_STAGING is sk_live_…(32 chars), must start with sk_test_ or rk_test_"), out)
        XCTAssertTrue(out.contains("FAIL stripe-webhook-secrets-differ: STRIPE_WEBHOOK_SECRET_STAGING is not set or empty"), out)
        XCTAssertTrue(out.contains("FAIL prod-ingestion-not-staging: INGESTION_ENDPOINT_URL_PROD points at host sandbox.provider.com"), out)
        XCTAssertTrue(out.contains("ok   prod-stripe-key-is-live"), out)
        assertNoSecret(out + result.stderr)
        let json = try Command.drkit(["env", "check", "--rules", TestServices.packageRoot + "/manifests/env-separation.yaml",
                                      "--env-file", try envFile("bad2.env", bad), "--json"])
        assertNoSecret(json.stdout)
    }

    func testGateEvidenceHoldsNoSecrets() throws {
        var bad = good
        bad["STRIPE_API_KEY_STAGING"] = secrets[0]
        let checklist = workDirectory.appendingPathComponent("env.yaml").path
        try """
            name: env
            steps:
              - {name: separation, kind: env-check, rules: \(TestServices.packageRoot)/manifests/env-separation.yaml, include_process_env: true}
            """.write(toFile: checklist, atomically: true, encoding: .utf8)
        let evidence = workDirectory.appendingPathComponent("evidence").path
        let result = try Command.drkit(["gate", checklist, "--audit-file", workDirectory.appendingPathComponent("a.jsonl").path,
                                        "--evidence-dir", evidence], environment: bad)
        XCTAssertEqual(result.status, 1)
        assertNoSecret(result.stdout + result.stderr)
        for file in try FileManager.default.contentsOfDirectory(atPath: evidence) {
            assertNoSecret(try String(contentsOfFile: evidence + "/" + file, encoding: .utf8))
        }
        assertNoSecret(try String(contentsOfFile: workDirectory.appendingPathComponent("a.jsonl").path, encoding: .utf8))
    }
}

/// The shipped promotion checklist against a test database, in a project-like working directory.
final class PromotionChecklistTests: DRKitTestCase {
    func testPromotionPassesAndFailsForTheRightReasons() throws {
        let staging = try newDatabase("drkit_staging", sql: "CREATE TABLE orders (id int PRIMARY KEY, total numeric);")
        let project = workDirectory.appendingPathComponent("project").path
        try FileManager.default.createDirectory(atPath: project + "/docs/api", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: project + "/manifests", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestServices.packageRoot + "/manifests/env-separation.yaml", toPath: project + "/manifests/env-separation.yaml")
        try "{\"openapi\": \"3.0.0\"}\n".write(toFile: project + "/docs/api/openapi.source", atomically: true, encoding: .utf8)
        try "{\"openapi\": \"3.0.0\"}\n".write(toFile: project + "/docs/api/openapi.json", atomically: true, encoding: .utf8)
        XCTAssertEqual(try Command.drkit(["schema", "snapshot", "--db", try conninfo(staging), "--out", project + "/db/schema.snapshot.sql",
                                          "--iteration", "3", "--changes", "orders"]).status, 0)
        var env = EnvCheckTests.goodEnvironment
        env["STAGING_DATABASE_URL"] = try conninfo(staging)
        env["OPENAPI_GENERATE"] = "cp docs/api/openapi.source docs/api/openapi.json"
        env["BREAKING_CHANGE_CHECK"] = "true"
        env["TEST_COMMAND"] = "echo '12 passed, 0 failed'"
        let attest = ["rollback-documented", "rollback-snapshot-committed", "monitoring-connected", "escalation-on-call"].flatMap { ["--attest", $0] }
        let checklist = TestServices.packageRoot + "/cutover-checklists/promotion.yaml"
        let run = { (env: [String: String]) in
            try Command.drkit(["gate", checklist, "--audit-file", self.workDirectory.appendingPathComponent("audit.jsonl").path,
                               "--operator", "release-manager"] + attest, environment: env, directory: project)
        }
        let passing = try run(env)
        XCTAssertEqual(passing.status, 0, passing.stdout + passing.stderr)
        XCTAssertEqual(passing.stdout.components(separatedBy: "] PASS ").count - 1, 9, passing.stdout)

        try PostgresClientBridge.execute("ALTER TABLE orders ADD COLUMN discount numeric", in: staging)
        let drift = try run(env)
        XCTAssertEqual(drift.status, 1)
        XCTAssertTrue(drift.stdout.contains("FAIL schema-snapshot-matches"), drift.stdout)
        XCTAssertTrue(drift.stderr.contains("failed at step schema-snapshot-matches"), drift.stderr)
        try PostgresClientBridge.execute("ALTER TABLE orders DROP COLUMN discount", in: staging)

        var stale = env
        stale["OPENAPI_GENERATE"] = "echo '{\"openapi\": \"3.1.0\"}' > docs/api/openapi.json"
        let regenerated = try run(stale)
        XCTAssertEqual(regenerated.status, 1)
        XCTAssertTrue(regenerated.stdout.contains("FAIL openapi-regenerated") && regenerated.stdout.contains("commit the regenerated file"), regenerated.stdout)
        try "{\"openapi\": \"3.0.0\"}\n".write(toFile: project + "/docs/api/openapi.json", atomically: true, encoding: .utf8)

        var mixed = env
        mixed["STRIPE_API_KEY_STAGING"] = mixed["STRIPE_API_KEY_PROD"]
        let separation = try run(mixed)
        XCTAssertEqual(separation.status, 1)
        XCTAssertTrue(separation.stdout.contains("FAIL stripe-and-ingestion-separation"), separation.stdout)

        var failingTests = env
        failingTests["TEST_COMMAND"] = "echo '3 failed'; exit 1"
        XCTAssertTrue(try run(failingTests).stdout.contains("FAIL full-test-suite"))
    }
}
