import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

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
