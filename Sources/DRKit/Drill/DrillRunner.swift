import Archive
import PostgresClient
import ObjectStorage
import Foundation
import Common

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
    /// Where the backup was taken or found.
    public var repository: String
    /// Where it was restored from (the second region in a failover drill).
    public var restoredFrom: String
    /// The copy to the second region, when the drill made one.
    public var copy: DrillCopy?
    /// Failover drills: when the primary was treated as lost; RTO and RPO count from here.
    public var primaryLostAt: Date?
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
        /// Signs the evidence (minisign) when set.
        public var signingKey: Minisign.SecretKey?
        /// age identities that open the backup (`--identity`), besides the scenario's key.
        public var identityFiles: [String] = []
        public var metricsFile: String?
        /// Where the drill's metrics go (file, DRKIT_METRICS_DIR, Pushgateway); `metricsFile` alone when nil.
        public var metrics: MetricsPublisher?
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

    /// Runs one step: times it, records it in the audit trail and the evidence, and logs it.
    private func run(_ step: DrillStep, _ state: DrillState) throws -> Bool {
        let command = state.mask.apply(step.command(state))
        note("phase \(step.name): \(command)")
        let start = Date()
        var outcome: StepOutcome
        var result: DrillStepResult?
        do {
            let r = try step.body(state)
            result = r
            outcome = StepOutcome(passed: true, summary: state.mask.apply(r.summary), figure: r.rows.map { "\($0) rows" } ?? "ok", rule: step.name,
                                  output: state.mask.apply(r.output), exitCode: 0)
        } catch {
            let e = DRKitError.wrap(error)
            let message = state.mask.apply(e.message)
            outcome = StepOutcome(passed: false, summary: message, figure: "error", rule: step.name, output: message, exitCode: Int(e.code.exitCode))
        }
        let end = Date()
        let seconds = end.timeIntervalSince(start)
        try recorder.record(name: step.name, kind: "drill-phase", advisory: false, outcome: outcome, startedAt: start, finishedAt: end)
        phases.append(DrillPhase(name: step.name, result: outcome.passed ? "passed" : "failed", command: command, summary: outcome.summary,
                                 seconds: seconds, bytes: result?.bytes, rows: result?.rows,
                                 bytesPerSecond: result?.bytes.map { seconds > 0 ? Double($0) / seconds : 0 }))
        log.append("\(Timestamps.iso8601(end)) phase \(step.name) \(outcome.passed ? "passed" : "FAILED") in \(Format.seconds(seconds)) s: \(outcome.summary)")
        return outcome.passed
    }

    private func skip(_ name: String, reason: String) {
        phases.append(DrillPhase(name: name, result: "skipped", command: "-", summary: reason, seconds: 0))
        log.append("\(Timestamps.iso8601(Date())) phase \(name) skipped: \(reason)")
    }

    /// Runs `DrillStep.all` in order, then judges the criteria and writes the evidence.
    public func run() throws -> DrillReport {
        let start = Date()
        recorder = RunbookRecorder(checklist: "drill:\(options.scenario.name)", operatorName: options.operatorName, audit: audit, console: console)
        let state = try prepare()
        for step in DrillStep.all {
            switch step.decide(state) {
            case .omit: continue
            case .skip(let reason): skip(step.name, reason: reason)
            case .run:
                let passed = try run(step, state)
                step.completed(state, passed)
                if !passed && step.stopsOnFailure { state.stopped = true }
            }
        }
        let report = makeReport(state, startedAt: start)
        note("drill \(state.scenario.name): \(report.result.uppercased())" + (report.failedCriteria.isEmpty ? "" : " (failed: \(report.failedCriteria.joined(separator: ", ")))"))
        try writeEvidence(report, parity: state.parity)
        if let key = options.signingKey {
            // The manifest as stored where the drill restored from: its digest ties the evidence to that backup.
            let manifest = report.backupId.flatMap { try? state.restoreRepository.store.get(key: "\($0)/\(ManifestFile.objectName)") }
            try EvidenceSignature.sign(directory: options.evidenceDirectory,
                                       chain: .init(kind: "drill", runId: report.runId, audit: audit, backupId: report.backupId, manifestBytes: manifest),
                                       key: key)
        }
        return report
    }

    /// Resolves the repository, key, source, scratch database and (unless the drill takes a fresh
    /// backup) the backup to restore.
    private func prepare() throws -> DrillState {
        let scenario = options.scenario
        var keys = KeyOptions(keyFile: try expand(scenario.keyFile).flatMap { $0.isEmpty ? nil : $0 },
                              passphraseEnv: scenario.passphraseEnv, environment: options.environment)
        keys.identityFiles = options.identityFiles
        let repositories = try DrillRepositories.open(scenario, expand: expand, settings: options.s3)
        let source = try expand(scenario.source).flatMap { $0.isEmpty ? nil : $0 }
        guard let serverConninfo = try expand(scenario.target).flatMap({ $0.isEmpty ? nil : $0 }) ?? source else {
            throw DRKitError(.usage, "drill \(scenario.name): give a target server (target:) when there is no source database")
        }
        var scratchOptions = try ConnectionOptions(serverConninfo)
        let scratch = scenario.scratchDatabase ?? "drkit_drill_\(recorder.runId.suffix(6))"
        scratchOptions["dbname"] = scratch
        let mask = SecretMask(SecretMask.secrets(ofConninfo: source) + SecretMask.secrets(ofConninfo: serverConninfo)
                              + SecretMask.secrets(ofEnvironment: options.environment)
                              + [scenario.passphraseEnv.flatMap { options.environment[$0] }])
        let state = DrillState(scenario: scenario, environment: options.environment, console: console, keys: keys, repositories: repositories,
                               source: source, scratch: scratch, scratchOptions: scratchOptions, mask: mask)
        note("drill \(scenario.name) (\(scenario.environment ?? "unspecified environment")): run \(recorder.runId), scratch database \(scratch), repository \(state.location)"
             + (repositories.copy.map { ", second region \($0.store.location)" } ?? "")
             + (state.restoreLocation != state.location ? ", restoring from \(state.restoreLocation)" : ""))
        let mode = scenario.backup ?? "latest"
        if mode == "fresh" {
            guard source != nil else { throw DRKitError(.usage, "drill \(scenario.name): backup: fresh needs a source database") }
        } else {
            // RPO comes from the authenticated manifest, never from the plaintext summary. A failover
            // drill that copies takes the backup from the primary; one that only restores, from where it restores.
            let repository = repositories.copy != nil ? repositories.primary : repositories.restore
            let manifest = try repository.openBackup(mode, keys: keys).manifest
            state.backupId = manifest.backupId
            state.snapshotTime = manifest.standby?.lastReplayedCommit ?? manifest.snapshotTime
            note("using backup \(manifest.backupId) (\(mode)), snapshot \(Timestamps.iso8601(manifest.snapshotTime))")
        }
        return state
    }

    private func makeReport(_ s: DrillState, startedAt: Date) -> DrillReport {
        let criteria = DrillCriteria.evaluate(.init(phases: phases, rto: s.rto, rpo: s.rpo, parity: s.parity, parityPassed: s.parityPassed,
                                                    smokePassed: s.smokePassed, comparedWithSource: s.source != nil), scenario: s.scenario)
        let failed = criteria.filter { !$0.passed }.map(\.name)
        var roles: [String: String] = ["operator": options.operatorName]
        if let r = s.scenario.roles {
            if let v = r.ic { roles["ic"] = v }
            if let v = r.operator { roles["operator"] = v }
            if let v = r.observer { roles["observer"] = v }
            if let v = r.reviewer { roles["reviewer"] = v }
        }
        return DrillReport(runId: recorder.runId, scenario: s.scenario.name, environment: s.scenario.environment ?? "unspecified", roles: roles,
                           startedAt: startedAt, finishedAt: Date(), result: failed.isEmpty ? "passed" : "failed", failedCriteria: failed,
                           backupId: s.backupId, backupSnapshotTime: s.snapshotTime, repository: s.location, restoredFrom: s.restoreLocation,
                           copy: s.copy, primaryLostAt: s.primaryLostAt, scratchDatabase: s.scratch, scratchDropped: s.scratchDropped,
                           rtoSeconds: s.rto, rpoSeconds: s.rpo, rows: s.restoredRows, bytes: s.restoredBytes, phases: phases,
                           criteria: criteria, auditTrail: audit.location)
    }

    static func url(from options: ConnectionOptions) -> String {
        let encode = URLComponentText.encode
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
            let page = DrillPage.html(report, history: DrillPage.history(for: report, evidenceDirectory: dir))
            try page.write(toFile: dir + "/drill-record.html", atomically: true, encoding: .utf8)
            let csv = parity?.csv() ?? "schema,table,source_rows,target_rows,match\n"
            try csv.write(toFile: dir + "/rowcount.csv", atomically: true, encoding: .utf8)
            try (log.joined(separator: "\n") + "\n").write(toFile: dir + "/backup.log", atomically: true, encoding: .utf8)
        } catch {
            throw DRKitError(.usage, "cannot write drill evidence: \(error.localizedDescription)")
        }
        let publisher = options.metrics ?? MetricsPublisher(file: options.metricsFile)
        if publisher.isEnabled {
            publisher.publish(CommandMetrics.drill(report)).forEach { note("warning: \($0)") }
        }
    }
}
