import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

/// `drkit drill` end to end on real PostgreSQL and the signature-checking S3 server.
final class DrillTests: DRKitTestCase {
    let schema = """
        CREATE SCHEMA shop;
        CREATE TABLE shop.orders (id int PRIMARY KEY, total numeric, note text);
        INSERT INTO shop.orders SELECT g, g * 2.5, 'order ' || g FROM generate_series(1, 5000) g;
        CREATE TABLE shop.customers (id int PRIMARY KEY, name text);
        INSERT INTO shop.customers SELECT g, 'c' || g FROM generate_series(1, 300) g;
        """
    var evidence: String { workDirectory.appendingPathComponent("evidence").path }
    var audit: String { workDirectory.appendingPathComponent("audit.jsonl").path }

    func smokeFile(_ sql: String) throws -> String {
        let path = workDirectory.appendingPathComponent("smoke-\(UUID().uuidString.prefix(4)).sql").path
        try sql.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func scenario(_ yaml: String) throws -> String {
        let path = workDirectory.appendingPathComponent("scenario.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    func scratchDatabases() throws -> [String] {
        let admin = try PostgresClientBridge.scalar("SELECT string_agg(datname, ',') FROM pg_database WHERE datname ~ '^drkit_drill_[0-9a-f]{6}$'", in: "postgres")
        return admin?.split(separator: ",").map(String.init) ?? []
    }

    func testFullDrillThroughS3WithMigrationAndSmokeChecks() throws {
        let s3 = try TestServices.s3()
        let source = try newDatabase("drkit_drill_src", sql: schema)
        let smoke = try smokeFile("""
            -- the restored shop is usable
            SELECT count(*) = 5000 FROM shop.orders;
            SELECT EXISTS (SELECT 1 FROM shop.orders WHERE note = 'order 42; with a semicolon' OR id = 42);
            SELECT to_regclass('shop.audit_log') IS NOT NULL;  -- created by the migration
            """)
        let file = try scenario("""
            name: quarterly-dr
            environment: staging
            source: ${SOURCE_URL}
            repo: s3://\(s3.bucket)/drill-\(UUID().uuidString.prefix(6))
            backup: fresh
            key_file: \(keyFile)
            migrate: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qc "CREATE TABLE shop.audit_log (id int)"
            smoke:
              - file: \(smoke)
              - name: customers-present
                sql: SELECT count(*) FROM shop.customers
                expect: "300"
            parity_checksum: true
            criteria:
              max_rto_seconds: 300
              max_rpo_minutes: 60
            roles:
              ic: Dana
              observer: Eve
            """)
        var env = s3.environment()
        env["SOURCE_URL"] = try conninfo(source)
        let metrics = workDirectory.appendingPathComponent("drkit.prom").path
        let result = try Command.drkit(["drill", file, "--evidence-dir", evidence, "--audit-file", audit, "--metrics-file", metrics,
                                        "--operator", "oscar"], environment: env)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertFalse(result.stdout.contains(TestServices.password) || result.stderr.contains(TestServices.password))
        XCTAssertFalse(result.stdout.contains(s3.secretKey) || result.stderr.contains(s3.secretKey))

        let report = try json(evidence + "/evidence.json")
        XCTAssertEqual(report["result"] as? String, "passed")
        XCTAssertEqual(report["scenario"] as? String, "quarterly-dr")
        XCTAssertEqual(report["environment"] as? String, "staging")
        XCTAssertEqual(report["rows"] as? Int, 5300)
        XCTAssertEqual(report["scratchDropped"] as? Bool, true)
        XCTAssertNotNil(report["backupId"] as? String)
        let rto = try XCTUnwrap(report["rtoSeconds"] as? Double)
        XCTAssertGreaterThan(rto, 0)
        XCTAssertLessThan(rto, 300)
        XCTAssertLessThan(try XCTUnwrap(report["rpoSeconds"] as? Double), 120, "a fresh backup")
        let phases = try XCTUnwrap(report["phases"] as? [[String: Any]])
        XCTAssertEqual(phases.map { $0["name"] as? String }, ["backup", "verify", "restore", "migrate", "smoke", "parity", "teardown"])
        XCTAssertTrue(phases.allSatisfy { $0["result"] as? String == "passed" }, "\(phases)")
        XCTAssertEqual(phases[4]["summary"] as? String, "4 smoke queries passed")
        XCTAssertNotNil(phases[2]["bytesPerSecond"] as? Double)
        let criteria = try XCTUnwrap(report["criteria"] as? [[String: Any]])
        XCTAssertEqual(criteria.map { $0["name"] as? String }, ["rto", "rpo", "parity", "smoke"])
        XCTAssertTrue(criteria.allSatisfy { $0["passed"] as? Bool == true })
        XCTAssertEqual((report["roles"] as? [String: String])?["ic"], "Dana")

        let csv = try String(contentsOfFile: evidence + "/rowcount.csv", encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(csv.first, "schema,table,source_rows,target_rows,match,source_checksum,target_checksum")
        XCTAssertTrue(csv.contains { $0.hasPrefix("shop,orders,5000,5000,true,") })
        XCTAssertTrue(csv.contains { $0.hasPrefix("shop,customers,300,300,true,") })
        XCTAssertEqual(csv.count, 3, "the table the migration created is not a parity row")

        let log = try String(contentsOfFile: evidence + "/backup.log", encoding: .utf8)
        for phase in ["backup", "verify", "restore", "migrate", "smoke", "parity", "teardown"] {
            XCTAssertTrue(log.contains("phase \(phase) passed"), "\(phase) in backup.log:\n\(log)")
        }
        XCTAssertTrue(log.contains("drill quarterly-dr: PASSED"))

        let record = try String(contentsOfFile: evidence + "/drill-record.md", encoding: .utf8)
        for line in ["## Drill Record", "- Environment: staging", "- Scenario: quarterly-dr", "- IC: Dana", "- Operator: oscar",
                     "- Observer: Eve", "### Execution Log", "4. Migration command + result: `psql", "### Outcome",
                     "- Pass/Fail: **PASSED**", "- Gaps found: no gaps", "PASS rto: RTO <= 300.00 s"] {
            XCTAssertTrue(record.contains(line), "\(line) in\n\(record)")
        }

        let prom = try String(contentsOfFile: metrics, encoding: .utf8)
        XCTAssertTrue(prom.contains("drkit_drill_success{scenario=\"quarterly-dr\"} 1"))
        XCTAssertTrue(prom.contains("drkit_drill_last_success_timestamp_seconds{scenario=\"quarterly-dr\"}"))
        XCTAssertTrue(prom.contains("drkit_drill_rto_seconds{scenario=\"quarterly-dr\"}"))
        XCTAssertTrue(prom.contains("drkit_drill_rpo_seconds{scenario=\"quarterly-dr\"}"))
        XCTAssertTrue(prom.contains("drkit_drill_restored_rows{scenario=\"quarterly-dr\"} 5300"))

        let records = try Command.drkit(["audit", "list", "--audit-file", audit, "--json"])
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(records.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["step"] as? String }, ["backup", "verify", "restore", "migrate", "smoke", "parity", "teardown"])
        XCTAssertEqual(Set(rows.compactMap { $0["checklist"] as? String }), ["drill:quarterly-dr"])
        XCTAssertEqual(try Command.drkit(["audit", "verify", "--audit-file", audit]).status, 0)
        XCTAssertTrue(try scratchDatabases().isEmpty)
    }

    func runFailingDrill(_ extra: [String], source: String, environment: [String: String] = [:]) throws -> CommandResult {
        try Command.drkit(["drill", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--fresh-backup",
                           "--evidence-dir", evidence, "--audit-file", audit] + extra, environment: environment)
    }

    func assertCompleteEvidence(failed criterion: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for name in ["evidence.json", "rowcount.csv", "backup.log", "drill-record.md"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: evidence + "/" + name), "\(name) written", file: file, line: line)
        }
        let report = try json(evidence + "/evidence.json")
        XCTAssertEqual(report["result"] as? String, "failed", file: file, line: line)
        XCTAssertTrue((report["failedCriteria"] as? [String] ?? []).contains(criterion), "\(report["failedCriteria"] ?? "")", file: file, line: line)
        XCTAssertEqual(report["scratchDropped"] as? Bool, true, file: file, line: line)
        XCTAssertEqual((report["phases"] as? [[String: Any]])?.last?["name"] as? String, "teardown", file: file, line: line)
        XCTAssertTrue(try String(contentsOfFile: evidence + "/drill-record.md", encoding: .utf8).contains("Pass/Fail: **FAILED**"), file: file, line: line)
        XCTAssertTrue(try scratchDatabases().isEmpty, "scratch database dropped", file: file, line: line)
    }

    func testFailingSmokeCheckFailsTheDrillWithCompleteEvidence() throws {
        let source = try newDatabase("drkit_drill_smoke", sql: schema)
        let result = try runFailingDrill(["--smoke", try smokeFile("SELECT count(*) = 4999 FROM shop.orders;")], source: source)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("smoke (smoke checks pass; measured failed)"), result.stderr)
        try assertCompleteEvidence(failed: "smoke")
    }

    func testExceededRTOFailsTheDrill() throws {
        let source = try newDatabase("drkit_drill_rto", sql: schema)
        let result = try runFailingDrill(["--max-rto-seconds", "0.001"], source: source)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("rto (RTO <= 0.00 s; measured"), result.stderr)
        try assertCompleteEvidence(failed: "rto")
    }

    func testParityFailureFailsTheDrill() throws {
        let source = try newDatabase("drkit_drill_parity", sql: schema)
        let result = try runFailingDrill(["--migrate", "psql \"$DATABASE_URL\" -qc 'DELETE FROM shop.customers WHERE id <= 10'"], source: source)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("parity (row counts match the source; measured 1/2 tables match)"), result.stderr)
        try assertCompleteEvidence(failed: "parity")
        let csv = try String(contentsOfFile: evidence + "/rowcount.csv", encoding: .utf8)
        XCTAssertTrue(csv.contains("shop,customers,300,290,false"), csv)
    }

    /// F7: a migration that prints DATABASE_URL (password included) leaves no password anywhere:
    /// not on the terminal, not in backup.log, drill-record.md, evidence.json or the audit trail.
    func testSecretsInMigrationOutputNeverReachOutputOrEvidence() throws {
        let source = try newDatabase("drkit_drill_secret", sql: schema)
        let result = try runFailingDrill(["--migrate", "echo \"DBURL=$DATABASE_URL\"; echo \"PW=$PGPASSWORD_FOR_TEST\"; exit 3"], source: source,
                                         environment: ["PGPASSWORD_FOR_TEST": TestServices.password])
        XCTAssertEqual(result.status, 1)
        let shown = result.stdout + result.stderr
        XCTAssertTrue(shown.contains("migration exited 3"), shown)
        XCTAssertTrue(shown.contains("DBURL=postgresql://") && shown.contains(SecretMask.replacement), "the output is kept, masked: \(shown)")
        let password = TestServices.password
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
        for (name, text) in [("stdout", result.stdout), ("stderr", result.stderr)] + (try ["backup.log", "drill-record.md", "evidence.json"].map {
            ($0, try String(contentsOfFile: evidence + "/" + $0, encoding: .utf8))
        }) + [("audit", try String(contentsOfFile: audit, encoding: .utf8))] {
            XCTAssertFalse(text.contains(password), "password in \(name)")
            XCTAssertFalse(text.contains(encoded), "encoded password in \(name)")
        }
    }

    func testRestoreLatestAgainstTheManifestWhenTheSourceIsGone() throws {
        let source = try newDatabase("drkit_drill_gone", sql: schema)
        try backup(source)
        let result = try Command.drkit(["drill", "--repo", repo, "--key-file", keyFile, "--restore-latest", "--target", try conninfo("postgres"),
                                        "--evidence-dir", evidence, "--audit-file", audit, "--max-rpo-minutes", "30"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let phases = try XCTUnwrap(try json(evidence + "/evidence.json")["phases"] as? [[String: Any]])
        XCTAssertEqual(phases.map { $0["name"] as? String }, ["verify", "restore", "migrate", "smoke", "parity", "teardown"])
        XCTAssertEqual(phases.map { $0["result"] as? String }, ["passed", "passed", "skipped", "skipped", "passed", "passed"])
        XCTAssertTrue(try String(contentsOfFile: evidence + "/rowcount.csv", encoding: .utf8).contains("shop,orders,5000,5000,true"))
    }

    /// The shipped region-failover scenario on two S3 servers with their own identities: the backup
    /// goes to moto, is copied to Ceph RGW, and everything after the copy reads RGW only.
    func testRegionFailoverDrillRestoresFromTheSecondRegionAlone() throws {
        let source = try newDatabase("drkit_drill_failover", sql: schema)
        let run = "failover-\(UUID().uuidString.prefix(6).lowercased())"
        var env = try TestServices.twoIdentities(in: workDirectory)
        let primary = try TestServices.s3().repository(run + "-primary", profile: "moto")
        let secondary = try TestServices.rgw().repository(run + "-secondary", profile: "ceph")
        env["SOURCE_DATABASE_URL"] = try conninfo(source)
        env["PRIMARY_REPO"] = primary
        env["SECONDARY_REPO"] = secondary
        env["DRKIT_KEY_FILE"] = keyFile
        let result = try Command.drkit(["drill", "manifests/drills/region-failover.yaml", "--evidence-dir", evidence, "--audit-file", audit],
                                       environment: env, directory: TestServices.packageRoot)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let report = try json(evidence + "/evidence.json")
        XCTAssertEqual(report["result"] as? String, "passed")
        let phases = try XCTUnwrap(report["phases"] as? [[String: Any]])
        XCTAssertEqual(phases.map { $0["name"] as? String }, ["backup", "copy", "verify", "restore", "migrate", "smoke", "parity", "teardown"])
        XCTAssertEqual(phases.map { $0["result"] as? String }, ["passed", "passed", "passed", "passed", "skipped", "passed", "passed", "passed"])
        XCTAssertTrue((phases[2]["command"] as? String)?.contains(run + "-secondary") ?? false, "verify reads the second region: \(phases[2])")
        let copy = try XCTUnwrap(report["copy"] as? [String: Any])
        XCTAssertEqual(copy["objectsHashChecked"] as? Bool, true)
        XCTAssertGreaterThan(copy["objects"] as? Int ?? 0, 2)
        XCTAssertNotEqual(report["repository"] as? String, report["restoredFrom"] as? String)
        XCTAssertTrue((report["restoredFrom"] as? String)?.contains("secondary") ?? false)
        // RTO counts from the loss of the primary, which comes after the copy and before the restore.
        let lost = try XCTUnwrap(Timestamps.parse(report["primaryLostAt"] as? String ?? ""))
        let finished = try XCTUnwrap(Timestamps.parse(report["finishedAt"] as? String ?? ""))
        let rto = try XCTUnwrap(report["rtoSeconds"] as? Double)
        XCTAssertLessThanOrEqual(rto, finished.timeIntervalSince(lost) + 0.01)
        XCTAssertGreaterThanOrEqual(rto, (phases[2]["seconds"] as? Double ?? 0) + (phases[3]["seconds"] as? Double ?? 0))
        let record = try String(contentsOfFile: evidence + "/drill-record.md", encoding: .utf8)
        XCTAssertTrue(record.contains("restored from") && record.contains("primary treated as lost"), record)
        let secret = try TestServices.rgw().secretKey
        XCTAssertFalse(result.stdout.contains(secret) || result.stderr.contains(secret))
    }

    /// Nothing may read the primary after the copy: a scenario that tries fails, naming why.
    func testAFailoverDrillThatReadsThePrimaryAfterTheCopyFails() throws {
        let source = try newDatabase("drkit_drill_fenced", sql: schema)
        let second = workDirectory.appendingPathComponent("second-region").path
        let result = try Command.drkit(["drill", "--db", try conninfo(source), "--repo", repo, "--copy-to", second, "--restore-from", repo,
                                        "--key-file", keyFile, "--fresh-backup", "--evidence-dir", evidence, "--audit-file", audit])
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        let phases = try XCTUnwrap(try json(evidence + "/evidence.json")["phases"] as? [[String: Any]])
        let verify = try XCTUnwrap(phases.first { $0["name"] as? String == "verify" })
        XCTAssertEqual(verify["result"] as? String, "failed")
        XCTAssertTrue((verify["summary"] as? String)?.contains("treated as lost") ?? false, "\(verify)")
    }

    func testDisasterRecoveryScriptRunsTheShippedScenario() throws {
        let source = try newDatabase("drkit_dr_script", sql: schema)
        try backup(source)
        let env = ["SOURCE_DATABASE_URL": try conninfo(source), "DRKIT_REPO": repo, "DRKIT_KEY_FILE": keyFile,
                   "MIGRATE_COMMAND": "echo migrated", "DRKIT": TestServices.drkitExecutable, "DRKIT_AUDIT_FILE": audit]
        let result = try Command.run("/bin/bash", [TestServices.packageRoot + "/scripts/disaster_recovery.sh", "--restore-latest",
                                                   "--storage-backends", "object_storage", "--storage-region", "us-west-2",
                                                   "--evidence-dir", evidence], environment: env, directory: TestServices.packageRoot)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["scenario"] as? String, "quarterly-dr")
        XCTAssertEqual(report["result"] as? String, "passed")
        XCTAssertEqual((report["phases"] as? [[String: Any]])?.first { $0["name"] as? String == "migrate" }?["result"] as? String, "passed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: evidence + "/drill-record.md"))
        // --region-failover runs the shipped failover scenario: the latest backup, copied to a second region.
        var failoverEnv = env
        failoverEnv["PRIMARY_REPO"] = repo
        failoverEnv["SECONDARY_REPO"] = workDirectory.appendingPathComponent("second-region").path
        let failover = try Command.run("/bin/bash", [TestServices.packageRoot + "/scripts/disaster_recovery.sh", "--region-failover",
                                                     "--evidence-dir", evidence + "-failover"], environment: failoverEnv, directory: TestServices.packageRoot)
        XCTAssertEqual(failover.status, 0, failover.stdout + failover.stderr)
        let failoverReport = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(failover.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(failoverReport["scenario"] as? String, "region-failover")
        XCTAssertNotNil(failoverReport["copy"])
    }

    /// drill-record.html: self-contained, a bar per phase (a failed phase red), the RTO/RPO trend once
    /// earlier drills of the scenario left evidence in the month folder, and it renders in headless Chromium.
    func testTheDrillRecordPageRendersWithATimelineAndATrend() throws {
        let source = try newDatabase("drkit_drill_page", sql: schema)
        let month = workDirectory.appendingPathComponent("evidence/2026-11").path
        for (index, smoke) in ["SELECT true", "SELECT false"].enumerated() {
            let result = try Command.drkit(["drill", "--name", "page", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile,
                                            "--fresh-backup", "--smoke", try smokeFile(smoke), "--evidence-dir", month + "/drill-\(index)",
                                            "--audit-file", audit])
            XCTAssertEqual(result.status, Int32(index), result.stderr)
        }
        let page = try String(contentsOfFile: month + "/drill-1/drill-record.html", encoding: .utf8)
        XCTAssertTrue(page.contains("FAILED") && page.contains("fill=\"#c62828\""), "the failed smoke phase is red")
        XCTAssertTrue(page.contains("RTO and RPO across drills of page"), "the second drill shows the trend")
        XCTAssertFalse(page.contains("<script") || page.contains("http://") || page.contains("https://"), "self-contained")
        let first = try String(contentsOfFile: month + "/drill-0/drill-record.html", encoding: .utf8)
        XCTAssertFalse(first.contains("across drills"), "one drill has no trend yet")

        let chromium = try XCTUnwrap(["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                     "chromium is not installed: scripts/setup.sh installs it")
        let shot = workDirectory.appendingPathComponent("page.png").path
        let rendered = try Command.run(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,900",
                                                  "--screenshot=\(shot)", "file://\(month)/drill-1/drill-record.html"],
                                       environment: ["HOME": workDirectory.path])
        XCTAssertEqual(rendered.status, 0, rendered.stderr)
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        XCTAssertGreaterThan(png.count, 10_000)
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "a PNG screenshot")
        XCTAssertFalse(rendered.stderr.contains("Uncaught") || rendered.stderr.contains("Page load failed"), rendered.stderr)
    }
}
