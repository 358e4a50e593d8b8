import XCTest
import Foundation
import TestSupport
@testable import DRKit

/// Metrics from every command, the shipped Prometheus rules and Alertmanager config (checked by their
/// own tools), and a real Pushgateway (issue "unattended operation").
final class MonitoringTests: StreamTestCase {
    private var monitoring: String { TestServices.packageRoot + "/manifests/monitoring" }
    private var pushgateway: Process?

    override func tearDown() {
        pushgateway?.terminate()
        pushgateway?.waitUntilExit()
        super.tearDown()
    }

    private func tool(_ name: String) throws -> String {
        for directory in ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
            return "\(directory)/\(name)"
        }
        throw TestServices.Missing(description: "\(name) is not installed: scripts/setup.sh installs prometheus, prometheus-alertmanager and prometheus-pushgateway")
    }

    func testShippedRulesAndAlertmanagerConfigPassTheirCheckers() throws {
        let check = try Command.run(try tool("promtool"), ["check", "rules", "drkit-alerts.yml"], directory: monitoring)
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("9 rules found"), check.stdout)
        let unit = try Command.run(try tool("promtool"), ["test", "rules", "drkit-alerts.test.yml"], directory: monitoring)
        XCTAssertEqual(unit.status, 0, unit.stdout + unit.stderr)
        let amtool = try Command.run(try tool("amtool"), ["check-config", "alertmanager.yml"], directory: monitoring)
        XCTAssertEqual(amtool.status, 0, amtool.stdout + amtool.stderr)
    }

    private func metricNames(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            line.split(separator: " ").first.map { String($0.prefix { $0 != "{" }) }
        })
    }

    /// Runs backup (twice), verify, forget, copy and a drill with metrics files, then checks that every
    /// metric a rule or the Grafana dashboard uses is one of theirs and that docs/monitoring.md documents
    /// every one of them.
    func testEveryMetricTheRulesAndDashboardUseIsEmittedAndEveryEmittedMetricIsDocumented() throws {
        let source = try newDatabase("drkit_metrics", sql: "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000);")
        let files = workDirectory.appendingPathComponent("metrics")
        try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
        func file(_ name: String) -> String { files.appendingPathComponent(name).path }
        let second = workDirectory.appendingPathComponent("second").path
        try backup(source, extra: ["--metrics-file", file("backup1.prom")])
        try PostgresClientBridge.execute("DELETE FROM t WHERE id > 400", in: source)
        try backup(source, extra: ["--metrics-file", file("backup2.prom")])
        let runs: [[String]] = [
            ["verify", "latest", "--repo", repo, "--key-file", keyFile, "--metrics-file", file("verify.prom")],
            ["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "5", "--metrics-file", file("forget.prom")],
            ["repo", "copy", "latest", "--from", repo, "--to", second, "--metrics-file", file("copy.prom")],
            ["parity", "--source", try conninfo(source), "--target", try conninfo(source), "--csv", file("rowcount.csv.out"), "--metrics-file", file("parity.prom")],
            ["schema", "snapshot", "--db", try conninfo(source), "--out", file("schema.sql.out"), "--iteration", "1", "--changes", "m"],
            ["schema", "diff", "--db", try conninfo(source), "--snapshot", file("schema.sql.out"), "--metrics-file", file("schema.prom")],
            ["drill", "--repo", repo, "--key-file", keyFile, "--restore-latest", "--target", try conninfo("postgres"),
             "--evidence-dir", workDirectory.appendingPathComponent("evidence").path, "--metrics-file", file("drill.prom"),
             "--audit-file", workDirectory.appendingPathComponent("audit.jsonl").path],
        ]
        for arguments in runs {
            let result = try Command.drkit(arguments)
            XCTAssertEqual(result.status, 0, "\(arguments[0]): \(result.stderr)")
        }
        // A stream's gauges: written while it runs (after a segment: the last commit and the lag), up 0 once stopped.
        let (stream, log) = try startStream(source, extra: ["--metrics-file", file("stream.prom"), "--replica-identity-full", "t"])
        try waitUntil("the stream's base backup", log: log) { try linkedBase(source) != nil }
        try PostgresClientBridge.execute("INSERT INTO t VALUES (0)", in: source)
        try waitUntil("the stream's gauges after a segment", log: log) {
            (try? String(contentsOfFile: file("stream.prom"), encoding: .utf8))?.contains("drkit_stream_last_commit_timestamp_seconds{") ?? false
        }
        XCTAssertEqual(stopStream(stream, log: log), 0)
        let streamMetrics = try String(contentsOfFile: file("stream.prom"), encoding: .utf8)
        XCTAssertTrue(streamMetrics.contains("drkit_stream_up{database=\"\(source)\",repository=\"file://\(repo)\"} 0"), streamMetrics)
        XCTAssertTrue(streamMetrics.contains("drkit_stream_slot_retained_bytes{"), streamMetrics)
        var emitted = Set<String>()
        for name in try FileManager.default.contentsOfDirectory(atPath: files.path) where name.hasSuffix(".prom") {
            emitted.formUnion(metricNames(try String(contentsOfFile: file(name), encoding: .utf8)))
        }
        let backupMetrics = try String(contentsOfFile: file("backup2.prom"), encoding: .utf8)
        XCTAssertTrue(backupMetrics.contains("drkit_backup_rows_change_ratio{database=\"\(source)\",repository=\"file://\(repo)\"} 0.4"), backupMetrics)

        let regex = try NSRegularExpression(pattern: "drkit_[a-z_]+")
        for file in ["drkit-alerts.yml", "drkit-dashboard.json"] {
            let text = try String(contentsOfFile: monitoring + "/" + file, encoding: .utf8)
            let used = Set(regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { (text as NSString).substring(with: $0.range) }
                .filter { !$0.hasPrefix("drkit_alerts") && !$0.hasPrefix("drkit_dashboard") })
            XCTAssertFalse(used.isEmpty, file)
            XCTAssertEqual(used.subtracting(emitted), [], "\(file) uses metrics drkit never emits")
        }
        let dashboard = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: monitoring + "/drkit-dashboard.json"))) as? [String: Any])
        XCTAssertGreaterThanOrEqual((dashboard["panels"] as? [[String: Any]])?.count ?? 0, 8)
        let docs = try String(contentsOfFile: TestServices.packageRoot + "/docs/monitoring.md", encoding: .utf8)
        XCTAssertEqual(emitted.filter { !docs.contains("`\($0)`") }, [], "metrics missing from docs/monitoring.md")
    }

    /// A real Pushgateway on 127.0.0.1: a good backup's metrics arrive; a failed one sets success to 0
    /// and leaves the last success time where it was.
    func testPushgatewayKeepsTheLastSuccessAcrossAFailure() throws {
        let port = try TestServices.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try tool("prometheus-pushgateway"))
        // No persistence file: Debian's default (/var/lib/prometheus/pushgateway.data) would share state between runs.
        process.arguments = ["--web.listen-address=127.0.0.1:\(port)", "--persistence.file="]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        pushgateway = process
        let url = "http://127.0.0.1:\(port)"
        let deadline = Date().addingTimeInterval(20)
        while (try? Command.run("/usr/bin/curl", ["-sf", url + "/-/ready"]).status) != 0 {
            guard Date() < deadline, process.isRunning else { return XCTFail("the Pushgateway did not start") }
            usleep(100_000)
        }
        let source = try newDatabase("drkit_push", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        func series(_ name: String) throws -> String? {
            let body = try Command.run("/usr/bin/curl", ["-sf", url + "/metrics"]).stdout
            return body.split(separator: "\n").first { $0.hasPrefix(name + "{") && $0.contains("job=\"drkit\"") && $0.contains("database=\"\(source)\"") }
                .map { String($0.split(separator: " ").last ?? "") }
        }
        try backup(source, extra: ["--pushgateway", url])
        XCTAssertEqual(try series("drkit_backup_success"), "1")
        let lastSuccess = try XCTUnwrap(try series("drkit_backup_last_success_timestamp_seconds"))

        let down = try unreachableConninfo(source)
        let failed = try Command.drkit(["backup", "--db", down, "--repo", repo, "--key-file", keyFile, "--pushgateway", url])
        XCTAssertEqual(failed.status, 3, failed.stderr)
        XCTAssertEqual(try series("drkit_backup_success"), "0")
        XCTAssertEqual(try series("drkit_backup_last_success_timestamp_seconds"), lastSuccess, "a failure keeps the last success")
    }

    /// The shipped systemd units pass `systemd-analyze verify` (pointed at the built drkit, since the
    /// units name /usr/bin/drkit, where the package installs it), and every schedule writes drill evidence into dated folders.
    func testShippedSchedulesAreValid() throws {
        let source = TestServices.packageRoot + "/manifests/schedules/systemd"
        let copy = workDirectory.appendingPathComponent("units")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        var instances: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: source).sorted() {
            let text = try String(contentsOfFile: source + "/" + name, encoding: .utf8)
            try text.replacingOccurrences(of: "/usr/bin/drkit", with: TestServices.drkitExecutable)
                .write(to: copy.appendingPathComponent(name), atomically: true, encoding: .utf8)
            instances.append("./" + name.replacingOccurrences(of: "@.", with: "@shop."))
        }
        XCTAssertEqual(instances.count, 7)
        let verify = try Command.run(try tool("systemd-analyze"), ["verify"] + instances, directory: copy.path)
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        for file in ["systemd/drkit-drill@.service", "crontab.example"] {
            let text = try String(contentsOfFile: TestServices.packageRoot + "/manifests/schedules/" + file, encoding: .utf8)
            XCTAssertTrue(text.contains("evidence/$(date -u +%%Y-%%m)") || text.contains("evidence/$(date -u +\\%Y-\\%m)"), file)
        }
    }

    /// End to end through the user's monitoring, not drkit's: a backup that fails (database down)
    /// pushes its metrics, Prometheus evaluates the shipped rules, Alertmanager delivers
    /// `DrkitBackupFailed` to a webhook; a following good backup resolves it. Bounded: each wait ends
    /// after 90 s, and the stack's processes stop by themselves.
    func testAFailedBackupReachesTheWebhookAndAGoodOneResolvesIt() throws {
        // Through a file, not a pipe: the stack's daemons outlive the script and would hold a pipe open.
        let envFile = workDirectory.appendingPathComponent("stack.env").path
        let starter = Process()
        starter.executableURL = URL(fileURLWithPath: "/bin/bash")
        starter.arguments = ["-c", "exec bash \"$0\" start > \"$1\" 2>&1 < /dev/null",
                             TestServices.packageRoot + "/scripts/monitoring-stack.sh", envFile]
        starter.standardInput = FileHandle.nullDevice
        starter.standardOutput = FileHandle.nullDevice
        starter.standardError = FileHandle.nullDevice
        try starter.run()
        // The script's last line names the webhook log; its exit is not awaited (Foundation can miss the
        // exit of a child whose own children outlive it in new sessions).
        var output = ""
        let startDeadline = Date().addingTimeInterval(60)
        while !output.contains("DRKIT_WEBHOOK_LOG") && !output.contains("not ready") && Date() < startDeadline {
            usleep(200_000)
            output = (try? String(contentsOfFile: envFile, encoding: .utf8)) ?? ""
        }
        XCTAssertTrue(output.contains("DRKIT_WEBHOOK_LOG"), "the monitoring stack did not start: \(output)")
        var stack: [String: String] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("export ") {
            let pair = line.dropFirst("export ".count).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { stack[String(pair[0])] = String(pair[1]).trimmingCharacters(in: CharacterSet(charactersIn: "'")) }
        }
        let directory = try XCTUnwrap(stack["DRKIT_MON_DIR"])
        defer {
            let stopper = Process()
            stopper.executableURL = URL(fileURLWithPath: "/bin/bash")
            stopper.arguments = [TestServices.packageRoot + "/scripts/monitoring-stack.sh", "stop", directory]
            stopper.standardOutput = FileHandle.nullDevice
            stopper.standardError = FileHandle.nullDevice
            try? stopper.run()
            let stopDeadline = Date().addingTimeInterval(20)
            while FileManager.default.fileExists(atPath: directory) && Date() < stopDeadline { usleep(100_000) }
        }
        let pushgateway = try XCTUnwrap(stack["DRKIT_PUSHGATEWAY_URL"]), log = try XCTUnwrap(stack["DRKIT_WEBHOOK_LOG"])

        let source = try newDatabase("drkit_alerting", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        func waitForNotification(_ status: String, of alert: String) -> Bool {
            let deadline = Date().addingTimeInterval(90)
            while Date() < deadline {
                let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
                let found = lines.contains { line in
                    guard let data = line.data(using: .utf8), let body = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                          let alerts = body["alerts"] as? [[String: Any]] else { return false }
                    return alerts.contains {
                        let labels = $0["labels"] as? [String: String]
                        return labels?["alertname"] == alert && labels?["database"] == source && $0["status"] as? String == status
                    }
                }
                if found { return true }
                usleep(250_000)
            }
            return false
        }

        let down = try unreachableConninfo(source)
        let failed = try Command.drkit(["backup", "--db", down, "--repo", repo, "--key-file", keyFile, "--pushgateway", pushgateway])
        XCTAssertEqual(failed.status, 3, failed.stderr)
        XCTAssertTrue(waitForNotification("firing", of: "DrkitBackupFailed"), "DrkitBackupFailed never reached the webhook")
        try backup(source, extra: ["--pushgateway", pushgateway])
        XCTAssertTrue(waitForNotification("resolved", of: "DrkitBackupFailed"), "the good backup did not resolve DrkitBackupFailed")
    }

    /// The anomaly check: a backup after a big delete names the table and the drop, records it in the
    /// manifest, and with --fail-on-shrink exits 1 while the backup stays committed.
    func testABackupThatShrankSaysWhichTablesAndByHowMuch() throws {
        let source = try newDatabase("drkit_shrink", sql: """
            CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 1000);
            CREATE TABLE steady (id int); INSERT INTO steady SELECT generate_series(1, 500);
            """)
        try backup(source)
        try PostgresClientBridge.execute("DELETE FROM orders WHERE id > 400", in: source)
        let warned = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--json"])
        XCTAssertEqual(warned.status, 0, warned.stderr)
        XCTAssertTrue(warned.stderr.contains("1 table(s) shrank by more than 20%") && warned.stderr.contains("public.orders 1000 → 400 rows (-6"), warned.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(warned.stdout.utf8)) as? [String: Any])
        let shrinkage = try XCTUnwrap(report["shrinkage"] as? [String: Any])
        XCTAssertEqual((shrinkage["tables"] as? [[String: Any]])?.map { $0["name"] as? String }, ["orders"])
        XCTAssertEqual(shrinkage["rowsRatio"] as? Double ?? 0, 900.0 / 1500.0, accuracy: 0.001)

        try PostgresClientBridge.execute("DELETE FROM orders WHERE id > 100", in: source)
        let failed = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--fail-on-shrink", "50%"])
        assertFailure(failed, exitCode: 1, mentions: "is committed, but public.orders lost ")
        XCTAssertEqual(try Repository.open(repo, create: false).backups().count, 3, "the backup stands")
    }
}
