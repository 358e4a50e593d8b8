import PostgresClient
import Foundation

/// What a phase did, for the evidence: a one-line summary, its figures, and output for the audit digest.
struct DrillStepResult {
    var summary: String
    var bytes: Int64? = nil
    var rows: Int64? = nil
    var output: String
}

/// One phase of a drill. The drill is the table `DrillStep.all`, run in order: a new phase (copy,
/// chaos, notify) is one more entry.
struct DrillStep: Sendable {
    enum Decision: Sendable {
        case run
        /// Recorded in the evidence as skipped, with the reason.
        case skip(String)
        /// Not part of this drill at all (nothing recorded).
        case omit
    }

    let name: String
    let decide: @Sendable (DrillState) -> Decision
    /// The command this phase stands for, as an operator would type it (no secrets).
    let command: @Sendable (DrillState) -> String
    /// Whether a failure stops the phases after it that need its result.
    let stopsOnFailure: Bool
    let body: @Sendable (DrillState) throws -> DrillStepResult
    var completed: @Sendable (DrillState, Bool) -> Void = { _, _ in }

    static let all: [DrillStep] = [backup, copy, verify, restore, migrate, smoke, parity, teardown]

    /// The common rule: a phase needs a backup and nothing stopped.
    private static func needsBackup(_ s: DrillState) -> Decision {
        if s.stopped { return .omit }
        return s.backupId == nil ? .skip("no backup") : .run
    }

    static let backup = DrillStep(
        name: "backup",
        decide: { $0.scenario.backup == "fresh" ? .run : .omit },
        command: { "drkit backup --db <source> --repo \($0.location) --jobs \($0.jobs)" },
        stopsOnFailure: true,
        body: { s in
            guard let source = s.source else { throw DRKitError(.usage, "drill \(s.scenario.name): backup: fresh needs a source database") }
            var o = BackupOptions(conninfo: source, key: try s.keys.resolve())
            o.jobs = s.jobs
            o.showProgress = false
            let r = try BackupEngine(options: o, repository: s.repository, console: s.console).run()
            s.backupId = r.summary.backupId
            s.snapshotTime = r.summary.effectiveTime ?? r.summary.snapshotTime
            let rows = r.manifest.tables.reduce(0) { $0 + $1.rows }
            return DrillStepResult(summary: "backup \(r.summary.backupId): \(r.summary.tableCount) tables, \(rows) rows, \(Format.bytes(r.summary.storedBytes)) stored",
                                   bytes: r.summary.storedBytes, rows: rows, output: r.summary.backupId)
        })

    /// Region failover: the backup goes to the second region, then the primary counts as lost.
    static let copy = DrillStep(
        name: "copy",
        decide: { s in s.copyRepository == nil ? .omit : needsBackup(s) },
        command: { "drkit repo copy \($0.backupId ?? "-") --from \($0.location) --to \($0.copyRepository?.store.location ?? "-")" },
        stopsOnFailure: true,
        body: { s in
            var o = RepositoryCopy.Options()
            o.jobs = s.jobs
            o.showProgress = false
            o.keys = s.keys
            let report = try RepositoryCopy.run(from: s.repository, to: s.copyRepository!, selection: .backup(s.backupId!), options: o, console: s.console)
            let outcome = report.backups[0]
            if let error = outcome.error { throw DRKitError(.repository, error) }
            guard outcome.status != .removedAtSource else { throw DRKitError(.repository, "backup \(outcome.backupId) was removed from \(report.from) while being copied") }
            s.copy = DrillCopy(from: report.from, to: report.to, seconds: outcome.seconds, objects: outcome.objectsCopied + outcome.objectsAlreadyThere,
                               bytes: outcome.bytesCopied, objectsHashChecked: true)
            return DrillStepResult(summary: "copied \(outcome.objectsCopied) objects (\(Format.bytes(outcome.bytesCopied))) to \(report.to) in \(Format.seconds(outcome.seconds)) s, every object's SHA-256 checked; the primary is now treated as lost",
                                   bytes: outcome.bytesCopied,
                                   output: "\(outcome.backupId) \(outcome.status.rawValue): \(outcome.objectsCopied) objects copied, \(outcome.objectsAlreadyThere) already there, \(outcome.bytesCopied) bytes, \(report.from) -> \(report.to)")
        },
        completed: { s, passed in
            guard passed else { return }
            s.primaryFence?.fence()
            s.primaryLostAt = Date()
        })

    static let verify = DrillStep(
        name: "verify", decide: needsBackup,
        command: { "drkit verify \($0.backupId ?? "-") --repo \($0.restoreLocation)" },
        stopsOnFailure: true,
        body: { s in
            let r = try VerifyEngine(repository: s.restoreRepository, keys: s.keys, jobs: s.jobs, showProgress: false, console: s.console).run(reference: s.backupId!)
            guard r.passed else {
                throw DRKitError(.integrity, "\(r.failures.count) bad object(s): " + r.failures.prefix(3).map { "\($0.object): \($0.reason)" }.joined(separator: "; "))
            }
            return DrillStepResult(summary: "\(r.objectsChecked) objects, \(r.rowsChecked) rows verified", bytes: r.storedBytes, rows: r.rowsChecked, output: "verified")
        })

    static let restore = DrillStep(
        name: "restore", decide: needsBackup,
        command: { "drkit restore \($0.backupId ?? "-") --repo \($0.restoreLocation) --target <server> dbname=\($0.scratch) --jobs \($0.jobs)" },
        stopsOnFailure: true,
        body: { s in
            s.restoreStart = Date()
            // With a change stream, what a disaster now would keep reaches its newest archived commit.
            if let database = try? s.restoreRepository.resolve(s.backupId!).summary.database,
               let last = (try? ChangeArchiveInventory.list(s.restoreRepository, database: database))?.last?.lastCommit.flatMap(CommitTime.parse) {
                s.archivedUntil = CommitTime.date(last)
            }
            var o = RestoreOptions(reference: s.backupId!, targetConninfo: s.scratchConninfo, keys: s.keys)
            o.jobs = s.jobs
            o.showProgress = false
            if let toTime = s.scenario.toTime.flatMap(CommitTime.parse) {
                // The newest base linked to the stream at or before the time, whichever the drill verified.
                o.reference = "latest"
                o.pointInTime = .time(toTime)
            }
            let r = try RestoreEngine(options: o, repository: s.restoreRepository, console: s.console).run()
            s.restoredRows = r.rows
            s.restoredBytes = r.plainBytes
            let replay = r.replay.map { ", then \($0.transactions) archived transactions replayed to \($0.reachedCommitTime ?? "the base")" } ?? ""
            return DrillStepResult(summary: "restored \(r.tables) tables, \(r.rows) rows\(replay) in \(Format.seconds(r.duration)) s", bytes: r.plainBytes, rows: r.rows,
                                   output: r.phases.map { "\($0.name) \($0.seconds)" }.joined(separator: "\n"))
        },
        completed: { s, passed in s.restored = passed })

    /// Migrations, with the scratch database in DATABASE_URL and PGDATABASE.
    static let migrate = DrillStep(
        name: "migrate",
        decide: { s in s.stopped ? .omit : (s.scenario.migrate == nil ? .skip("no migration command in the scenario") : .run) },
        command: { $0.scenario.migrate ?? "-" },
        stopsOnFailure: true,
        body: { s in
            let migrate = s.scenario.migrate!
            var env = s.environment
            env["DATABASE_URL"] = DrillRunner.url(from: s.scratchOptions)
            env["PGDATABASE"] = s.scratch
            let result = try ShellCommand.run(migrate, environment: env, workingDirectory: FileManager.default.currentDirectoryPath,
                                              timeout: s.scenario.migrateTimeout.flatMap(Durations.parse) ?? 1800)
            guard result.status == 0, !result.timedOut else {
                throw DRKitError(.checkFailed, result.timedOut ? "migration timed out" : "migration exited \(result.status): \(result.output.split(separator: "\n").suffix(3).joined(separator: " | "))")
            }
            return DrillStepResult(summary: "`\(migrate)` exit 0", output: result.output)
        })

    /// A failed smoke check is recorded but does not stop parity: more evidence for the same run.
    static let smoke = DrillStep(
        name: "smoke",
        decide: { s in
            if s.stopped { return .omit }
            guard let checks = s.scenario.smoke, !checks.isEmpty else {
                if s.restored { s.smokePassedAt = Date() }  // nothing to check: the service is back once restored
                return .skip("no smoke checks in the scenario")
            }
            return .run
        },
        command: { $0.scenario.smoke?.map { $0.file ?? $0.name ?? "sql" }.joined(separator: ", ") ?? "-" },
        stopsOnFailure: false,
        body: { s in try runSmokeChecks(s) },
        completed: { s, passed in
            s.smokePassed = passed
            if passed { s.smokePassedAt = Date() }
        })

    /// Against the source, or the backup's manifest when the source is gone.
    static let parity = DrillStep(
        name: "parity",
        decide: { s in
            guard !s.stopped, s.restored else { return .skip(s.stopped ? "an earlier phase failed" : "nothing restored") }
            // Neither the live source nor the base backup holds what the database held at the target.
            return s.scenario.toTime == nil ? .run : .skip("a point-in-time restore (to_time) is checked by its smoke checks: the source has moved on since the target")
        },
        command: { s in s.source != nil ? "drkit parity --source <source> --target <scratch>" : "drkit parity --source-backup \(s.backupId ?? "-") --target <scratch>" },
        stopsOnFailure: false,
        body: { s in
            var o = ParityOptions(source: s.source.map { .database($0) } ?? .backup(reference: s.backupId!, repository: s.restoreRepository, keys: s.keys),
                                  target: .database(s.scratchConninfo))
            o.checksum = (s.scenario.parityChecksum ?? false) && s.source != nil
            o.sourceTablesOnly = true
            let r = try ParityEngine(options: o).run()
            s.parity = r
            guard r.match else {
                throw DRKitError(.checkFailed, "\(r.mismatches.count) of \(r.tables.count) tables differ: " + r.mismatches.prefix(5).map { "\($0.schema).\($0.table)" }.joined(separator: ", "))
            }
            return DrillStepResult(summary: "all \(r.tables.count) tables match\(o.checksum ? " (counts and checksums)" : "")",
                                   rows: r.tables.reduce(0) { $0 + ($1.targetRows ?? 0) }, output: r.csv())
        },
        completed: { s, passed in s.parityPassed = passed })

    /// Runs whatever happened before it, unless the scenario keeps the scratch database.
    static let teardown = DrillStep(
        name: "teardown",
        decide: { s in (s.scenario.keep ?? false) ? .skip("--keep: scratch database \(s.scratch) left in place") : .run },
        command: { "DROP DATABASE \($0.scratch)" },
        stopsOnFailure: false,
        body: { s in
            try RestoreTarget(conninfo: s.scratchConninfo).drop(force: true)
            s.scratchDropped = true
            return DrillStepResult(summary: "dropped scratch database \(s.scratch)", output: s.scratch)
        })

    private static func runSmokeChecks(_ s: DrillState) throws -> DrillStepResult {
        let connection: Connection
        do { connection = try Connection(conninfo: s.scratchConninfo) } catch { throw DRKitError.wrap(error, "connecting to the scratch database") }
        var passed = 0
        var lines: [String] = []
        for check in s.scenario.smoke ?? [] {
            let (label, statements) = try DrillRunner.statements(of: check, environment: s.environment)
            for statement in statements {
                let result: QueryResult
                do { result = try connection.query(statement) } catch { throw DRKitError(.checkFailed, "smoke check \(label) failed: \(DRKitError.wrap(error).message)") }
                guard result.count > 0 else { continue }
                let value = result.rows[0].first ?? nil
                let expected = check.expect ?? "t"
                guard value == expected else { throw DRKitError(.checkFailed, "smoke check \(label) returned \(value ?? "NULL"), expected \(expected)") }
                passed += 1
                lines.append("\(label): ok")
            }
        }
        return DrillStepResult(summary: "\(passed) smoke quer\(passed == 1 ? "y" : "ies") passed", output: lines.joined(separator: "\n"))
    }
}
