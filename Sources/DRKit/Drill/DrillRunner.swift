import Foundation
import ObjectStorage
import Archive
import Common
import PostgresClient

/// One measured phase of a drill.
public struct DrillPhase: Codable, Sendable {
    public var name: String
    /// passed | failed | skipped
    public var result: String
    public var command: String
    public var summary: String
    public var seconds: Double
    public var bytes: Int64?
    public var rows: Int64?
    public var bytesPerSecond: Double?
}

public struct DrillCriterion: Codable, Sendable {
    public var name: String
    public var rule: String
    public var figure: String
    public var passed: Bool
}

/// evidence.json of a drill.
public struct DrillReport: Codable, Sendable {
    public var tool = "drkit"
    public var toolVersion = DRKitVersion.current
    public var kind = "drill"
    public var runId: String
    public var scenario: String
    public var environment: String
    public var roles: [String: String]
    public var startedAt: Date
    public var finishedAt: Date
    /// passed | failed
    public var result: String
    public var failedCriteria: [String]
    public var backupId: String?
    public var backupSnapshotTime: Date?
    public var scratchDatabase: String
    public var scratchDropped: Bool
    public var rtoSeconds: Double?
    public var rpoSeconds: Double?
    public var rows: Int64
    public var bytes: Int64
    public var phases: [DrillPhase]
    public var criteria: [DrillCriterion]
    public var auditTrail: String
}

public final class DrillRunner {
    public struct Options: Sendable {
        public var scenario: DrillScenario
        public var scenarioFile: String?
        public var evidenceDirectory: String
        public var metricsFile: String?
        public var operatorName: String
        public var environment: [String: String] = ProcessInfo.processInfo.environment
        public var s3 = StorageSettings()
        public init(scenario: DrillScenario, scenarioFile: String?, evidenceDirectory: String, metricsFile: String?, operatorName: String) {
            self.scenario = scenario
            self.scenarioFile = scenarioFile
            self.evidenceDirectory = evidenceDirectory
            self.metricsFile = metricsFile
            self.operatorName = operatorName
        }
    }

    let options: Options
    let audit: AuditStore
    let console: Console
    private var log: [String] = []
    private var phases: [DrillPhase] = []
    private var recorder: RunbookRecorder!

    public init(options: Options, audit: AuditStore, console: Console = .shared) {
        self.options = options
        self.audit = audit
        self.console = console
    }

    private func expand(_ text: String?) throws -> String? {
        try text.map { try Interpolation.expand($0, environment: options.environment) }
    }

    private func note(_ line: String) {
        log.append("\(Timestamps.iso8601(Date())) \(line)")
        console.note(line)
    }

    /// Runs a phase: times it, records it in the audit trail and the evidence, and logs it.
    @discardableResult
    private func phase(_ name: String, command: String, _ body: () throws -> (summary: String, bytes: Int64?, rows: Int64?, output: String)) throws -> Bool {
        note("phase \(name): \(command)")
        let start = Date()
        var outcome: StepOutcome
        var bytes: Int64?, rows: Int64?
        do {
            let r = try body()
            bytes = r.bytes
            rows = r.rows
            outcome = StepOutcome(passed: true, summary: r.summary, figure: r.rows.map { "\($0) rows" } ?? "ok", rule: name, output: r.output, exitCode: 0)
        } catch {
            let e = DRKitError.wrap(error)
            outcome = StepOutcome(passed: false, summary: e.message, figure: "error", rule: name, output: e.message, exitCode: Int(e.code.exitCode))
        }
        let end = Date()
        let seconds = end.timeIntervalSince(start)
        try recorder.record(name: name, kind: "drill-phase", advisory: false, outcome: outcome, startedAt: start, finishedAt: end)
        phases.append(DrillPhase(name: name, result: outcome.passed ? "passed" : "failed", command: command, summary: outcome.summary,
                                 seconds: seconds, bytes: bytes, rows: rows,
                                 bytesPerSecond: bytes.map { seconds > 0 ? Double($0) / seconds : 0 }))
        log.append("\(Timestamps.iso8601(end)) phase \(name) \(outcome.passed ? "passed" : "FAILED") in \(Format.seconds(seconds)) s: \(outcome.summary)")
        return outcome.passed
    }

    private func skip(_ name: String, reason: String) {
        phases.append(DrillPhase(name: name, result: "skipped", command: "-", summary: reason, seconds: 0))
        log.append("\(Timestamps.iso8601(Date())) phase \(name) skipped: \(reason)")
    }

    public func run() throws -> DrillReport {
        let scenario = options.scenario
        let start = Date()
        recorder = RunbookRecorder(checklist: "drill:\(scenario.name)", operatorName: options.operatorName, audit: audit, console: console)
        let keys = KeyOptions(keyFile: try expand(scenario.keyFile).flatMap { $0.isEmpty ? nil : $0 },
                              passphraseEnv: scenario.passphraseEnv, environment: options.environment)
        let repoLocation = try expand(scenario.repo)!
        let repository = try Repository.open(repoLocation, create: true, s3: options.s3)
        let source = try expand(scenario.source).flatMap { $0.isEmpty ? nil : $0 }
        guard let serverConninfo = try expand(scenario.target).flatMap({ $0.isEmpty ? nil : $0 }) ?? source else {
            throw DRKitError(.usage, "drill \(scenario.name): give a target server (target:) when there is no source database")
        }
        var targetOptions = try ConnectionOptions(serverConninfo)
        let scratch = scenario.scratchDatabase ?? "drkit_drill_\(recorder.runId.suffix(6))"
        targetOptions["dbname"] = scratch
        let scratchConninfo = targetOptions.conninfo
        let jobs = scenario.jobs ?? 2
        note("drill \(scenario.name) (\(scenario.environment ?? "unspecified environment")): run \(recorder.runId), scratch database \(scratch), repository \(repository.store.location)")

        var backupId: String?
        var snapshotTime: Date?
        var restoreStart: Date?
        var smokePassedAt: Date?
        var restoredRows: Int64 = 0, restoredBytes: Int64 = 0
        var parityPassed: Bool?
        var smokePassed: Bool?
        var stopped = false

        // 1. Backup (or pick the latest).
        let mode = scenario.backup ?? "latest"
        if mode == "fresh" {
            guard let source else { throw DRKitError(.usage, "drill \(scenario.name): backup: fresh needs a source database") }
            stopped = !(try phase("backup", command: "drkit backup --db <source> --repo \(repository.store.location) --jobs \(jobs)") {
                var o = BackupOptions(conninfo: source, key: try keys.resolve())
                o.jobs = jobs
                o.showProgress = false
                let r = try BackupEngine(options: o, repository: repository, console: console).run()
                backupId = r.summary.backupId
                snapshotTime = r.summary.snapshotTime
                let rows = r.manifest.tables.reduce(0) { $0 + $1.rows }
                return ("backup \(r.summary.backupId): \(r.summary.tableCount) tables, \(rows) rows, \(Format.bytes(r.summary.storedBytes)) stored",
                        r.summary.storedBytes, rows, r.summary.backupId)
            })
        } else {
            let file = try repository.resolve(mode)
            backupId = file.summary.backupId
            snapshotTime = file.summary.snapshotTime
            note("using backup \(file.summary.backupId) (\(mode)), snapshot \(Timestamps.iso8601(file.summary.snapshotTime))")
        }

        // 2. Verify.
        if !stopped, let id = backupId {
            stopped = !(try phase("verify", command: "drkit verify \(id) --repo \(repository.store.location)") {
                let r = try VerifyEngine(repository: repository, keys: keys, jobs: jobs, showProgress: false, console: console).run(reference: id)
                guard r.passed else {
                    throw DRKitError(.integrity, "\(r.failures.count) bad object(s): " + r.failures.prefix(3).map { "\($0.object): \($0.reason)" }.joined(separator: "; "))
                }
                return ("\(r.objectsChecked) objects, \(r.rowsChecked) rows verified", r.storedBytes, r.rowsChecked, "verified")
            })
        } else if !stopped { skip("verify", reason: "no backup") }

        // 3. Restore into the scratch database.
        var restored = false
        if !stopped, let id = backupId {
            restoreStart = Date()
            restored = try phase("restore", command: "drkit restore \(id) --repo \(repository.store.location) --target <server> dbname=\(scratch) --jobs \(jobs)") {
                var o = RestoreOptions(reference: id, targetConninfo: scratchConninfo, keys: keys)
                o.jobs = jobs
                o.showProgress = false
                let r = try RestoreEngine(options: o, repository: repository, console: console).run()
                restoredRows = r.rows
                restoredBytes = r.plainBytes
                return ("restored \(r.tables) tables, \(r.rows) rows in \(Format.seconds(r.duration)) s", r.plainBytes, r.rows,
                        r.phases.map { "\($0.name) \($0.seconds)" }.joined(separator: "\n"))
            }
            stopped = !restored
        } else if !stopped { skip("restore", reason: "no backup") }

        // 4. Migrations, with the scratch database in DATABASE_URL.
        if !stopped, let migrate = scenario.migrate {
            stopped = !(try phase("migrate", command: migrate) {
                var env = options.environment
                env["DATABASE_URL"] = DrillRunner.url(from: targetOptions)
                env["PGDATABASE"] = scratch
                let result = try ShellCommand.run(migrate, environment: env, workingDirectory: FileManager.default.currentDirectoryPath,
                                                  timeout: scenario.migrateTimeout.flatMap(Durations.parse) ?? 1800)
                guard result.status == 0, !result.timedOut else {
                    throw DRKitError(.checkFailed, result.timedOut ? "migration timed out" : "migration exited \(result.status): \(result.output.split(separator: "\n").suffix(3).joined(separator: " | "))")
                }
                return ("`\(migrate)` exit 0", nil, nil, result.output)
            })
        } else if !stopped { skip("migrate", reason: "no migration command in the scenario") }

        // 5. Smoke checks.
        if !stopped, let smoke = scenario.smoke, !smoke.isEmpty {
            smokePassed = try phase("smoke", command: smoke.map { $0.file ?? $0.name ?? "sql" }.joined(separator: ", ")) {
                let connection: Connection
                do { connection = try Connection(conninfo: scratchConninfo) } catch { throw DRKitError.wrap(error, "connecting to the scratch database") }
                var passed = 0
                var lines: [String] = []
                for check in smoke {
                    let (label, statements) = try DrillRunner.statements(of: check, environment: options.environment)
                    for statement in statements {
                        let result: QueryResult
                        do { result = try connection.query(statement) } catch { throw DRKitError(.checkFailed, "smoke check \(label) failed: \(DRKitError.wrap(error).message)") }
                        guard result.count > 0 else { continue }
                        let value = result.rows[0].first ?? nil
                        let expected = check.expect ?? "t"
                        guard value == expected else {
                            throw DRKitError(.checkFailed, "smoke check \(label) returned \(value ?? "NULL"), expected \(expected)")
                        }
                        passed += 1
                        lines.append("\(label): ok")
                    }
                }
                return ("\(passed) smoke quer\(passed == 1 ? "y" : "ies") passed", nil, nil, lines.joined(separator: "\n"))
            }
            if smokePassed == true { smokePassedAt = Date() }
        } else if !stopped {
            skip("smoke", reason: "no smoke checks in the scenario")
            if restored { smokePassedAt = Date() }
        }

        // 6. Parity against the source (or the backup's manifest when the source is gone).
        var paritySummary: ParityReport?
        if !stopped, restored {
            parityPassed = try phase("parity", command: source != nil ? "drkit parity --source <source> --target <scratch>" : "drkit parity --source-backup \(backupId!) --target <scratch>") {
                var o = ParityOptions(source: source.map { .database($0) } ?? .backup(reference: backupId!, repository: repository, keys: keys),
                                      target: .database(scratchConninfo))
                o.checksum = (scenario.parityChecksum ?? false) && source != nil
                o.sourceTablesOnly = true
                let r = try ParityEngine(options: o).run()
                paritySummary = r
                guard r.match else {
                    throw DRKitError(.checkFailed, "\(r.mismatches.count) of \(r.tables.count) tables differ: " + r.mismatches.prefix(5).map { "\($0.schema).\($0.table)" }.joined(separator: ", "))
                }
                return ("all \(r.tables.count) tables match\(o.checksum ? " (counts and checksums)" : "")", nil, r.tables.reduce(0) { $0 + ($1.targetRows ?? 0) }, r.csv())
            }
        } else { skip("parity", reason: stopped ? "an earlier phase failed" : "nothing restored") }

        // 7. Teardown, whatever happened.
        var dropped = false
        if scenario.keep ?? false {
            skip("teardown", reason: "--keep: scratch database \(scratch) left in place")
        } else {
            try phase("teardown", command: "DROP DATABASE \(scratch)") {
                try RestoreTarget(conninfo: scratchConninfo).drop(force: true)
                dropped = true
                return ("dropped scratch database \(scratch)", nil, nil, scratch)
            }
        }

        // Figures and criteria.
        let rto = restoreStart.flatMap { start in smokePassedAt.map { $0.timeIntervalSince(start) } }
        let rpo = snapshotTime.flatMap { snap in restoreStart.map { $0.timeIntervalSince(snap) } }
        var criteria: [DrillCriterion] = []
        for p in phases where p.result == "failed" && p.name != "smoke" && p.name != "parity" {
            criteria.append(DrillCriterion(name: "phase-\(p.name)", rule: "phase \(p.name) completes", figure: "failed", passed: false))
        }
        let c = scenario.criteria
        if let max = c?.maxRtoSeconds {
            criteria.append(DrillCriterion(name: "rto", rule: "RTO <= \(Format.seconds(max)) s", figure: rto.map { "\(Format.seconds($0)) s" } ?? "not reached",
                                           passed: (rto ?? .infinity) <= max))
        }
        if let max = c?.maxRpoMinutes {
            criteria.append(DrillCriterion(name: "rpo", rule: "RPO <= \(max) min", figure: rpo.map { String(format: "%.1f min", $0 / 60) } ?? "unknown",
                                           passed: (rpo ?? .infinity) <= max * 60))
        }
        if c?.parityRequired ?? true {
            criteria.append(DrillCriterion(name: "parity", rule: "row counts match the \(source != nil ? "source" : "backup manifest")",
                                           figure: paritySummary.map { "\($0.tables.count - $0.mismatches.count)/\($0.tables.count) tables match" } ?? "not run",
                                           passed: parityPassed == true))
        }
        if c?.smokeRequired ?? !(scenario.smoke ?? []).isEmpty {
            criteria.append(DrillCriterion(name: "smoke", rule: "smoke checks pass", figure: smokePassed.map { $0 ? "passed" : "failed" } ?? "not run",
                                           passed: smokePassed == true))
        }
        let failed = criteria.filter { !$0.passed }.map(\.name)
        let finish = Date()
        var roles: [String: String] = ["operator": options.operatorName]
        if let r = scenario.roles {
            if let v = r.ic { roles["ic"] = v }
            if let v = r.operator { roles["operator"] = v }
            if let v = r.observer { roles["observer"] = v }
            if let v = r.reviewer { roles["reviewer"] = v }
        }
        let report = DrillReport(runId: recorder.runId, scenario: scenario.name, environment: scenario.environment ?? "unspecified", roles: roles,
                                 startedAt: start, finishedAt: finish, result: failed.isEmpty ? "passed" : "failed", failedCriteria: failed,
                                 backupId: backupId, backupSnapshotTime: snapshotTime, scratchDatabase: scratch, scratchDropped: dropped,
                                 rtoSeconds: rto, rpoSeconds: rpo, rows: restoredRows, bytes: restoredBytes, phases: phases,
                                 criteria: criteria, auditTrail: audit.location)
        note("drill \(scenario.name): \(report.result.uppercased())" + (failed.isEmpty ? "" : " (failed: \(failed.joined(separator: ", ")))"))
        try writeEvidence(report, parity: paritySummary)
        return report
    }

    static func url(from options: ConnectionOptions) -> String {
        let encode = { (s: String) in s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s }
        var userInfo = options["user"].map(encode) ?? ""
        if let password = options["password"] { userInfo += ":" + encode(password) }
        let host = options["host"] ?? options["hostaddr"] ?? "localhost"
        let port = options["port"].map { ":\($0)" } ?? ""
        return "postgresql://\(userInfo.isEmpty ? "" : userInfo + "@")\(host)\(port)/\(encode(options["dbname"] ?? ""))"
    }

    static func statements(of check: DrillScenario.Smoke, environment: [String: String]) throws -> (String, [String]) {
        if let sql = check.sql { return (check.name ?? sql, [sql]) }
        guard let file = check.file else { throw DRKitError(.usage, "a smoke check needs file: or sql:") }
        guard let text = try? String(contentsOfFile: try Interpolation.expand(file, environment: environment), encoding: .utf8) else {
            throw DRKitError(.usage, "cannot read smoke check file \(file)")
        }
        return (check.name ?? file, SQLStatements.split(text))
    }

    private func writeEvidence(_ report: DrillReport, parity: ParityReport?) throws {
        let dir = options.evidenceDirectory
        try EvidenceFiles.write(json: report, markdown: DrillRecord.markdown(report, scenario: options.scenario, scenarioFile: options.scenarioFile),
                                markdownName: "drill-record.md", to: dir)
        do {
            let csv = parity?.csv() ?? "schema,table,source_rows,target_rows,match\n"
            try csv.write(toFile: dir + "/rowcount.csv", atomically: true, encoding: .utf8)
            try (log.joined(separator: "\n") + "\n").write(toFile: dir + "/backup.log", atomically: true, encoding: .utf8)
            if let metrics = options.metricsFile {
                let text = DrillMetrics.prometheus(report)
                let temporary = metrics + ".tmp"
                try text.write(toFile: temporary, atomically: false, encoding: .utf8)
                _ = rename(temporary, metrics)
            }
        } catch {
            throw DRKitError(.usage, "cannot write drill evidence: \(error.localizedDescription)")
        }
    }
}
