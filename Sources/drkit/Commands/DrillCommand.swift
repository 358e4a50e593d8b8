import ArgumentParser
import DRKit
import Foundation

struct Drill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "DR rehearsal: backup (or latest) → verify → restore to a scratch database → migrate → smoke checks → parity → teardown.",
        discussion: "Runs a scenario file (manifests/drills/*.yaml) or flags alone; flags override the file. Each phase is timed and recorded in the audit trail. RPO is the restored backup's age when the restore starts; RTO runs from the start of the restore to a database that passes its smoke checks. With --copy-to (or copy_to: in the scenario) the backup is copied to a second repository, the primary is then treated as lost (nothing may read it), verify/restore/parity read --restore-from (default: --copy-to), and RTO and RPO count from the loss of the primary. Writes evidence.json, rowcount.csv, backup.log, drill-record.md and drill-record.html (a self-contained page: phase timeline, criteria, and the RTO/RPO trend across earlier drills whose evidence sits beside it, e.g. evidence/<yyyy-mm>/drill-<date>) to --evidence-dir, and Prometheus metrics to --metrics-file. With --signing-key (or DRKIT_SIGNING_KEY) the evidence is signed in minisign's format: a .minisig per file, SHA256SUMS and its .minisig, and evidence-chain.json (the audit trail's head hash and the backup's manifest digest); `drkit evidence verify DIR --public-key KEY.pub` or `minisign -Vm FILE -p KEY.pub` checks it. The scratch database is dropped unless --keep, also when the drill fails. Exit codes: 0 every criterion passed, 1 a criterion failed (named), 2 invalid scenario or options or another error, 5 the backup to rehearse was refused as forged or damaged.")

    @Argument(help: "Scenario YAML (optional when the flags say enough).")
    var scenario: String?
    @Option(name: .long, help: "Scenario name for the record and metrics (default: the file's name, or ad-hoc).")
    var name: String?
    @Option(name: .long, help: ArgumentHelp("Source database (conninfo or URL).", valueName: "conninfo"))
    var db: String?
    @Option(name: .long, help: ArgumentHelp("Backup repository.", valueName: "repo"))
    var repo: String?
    @Option(name: .long, help: ArgumentHelp("Region failover: copy the backup to this repository, then act as if --repo were lost (nothing reads it after the copy).", valueName: "repo"))
    var copyTo: String?
    @Option(name: .long, help: ArgumentHelp("Restore from this repository (default: --copy-to); RTO and RPO then count from the loss of the primary.", valueName: "repo"))
    var restoreFrom: String?
    @Flag(name: .long, help: "Restore the latest backup instead of taking a new one.")
    var restoreLatest = false
    @Flag(name: .long, help: "Take a new backup first.")
    var freshBackup = false
    @OptionGroup var keys: KeyFlags
    @Option(name: .long, help: ArgumentHelp("Server for the scratch database (conninfo; default: the source's server).", valueName: "conninfo"))
    var target: String?
    @Option(name: .long, help: ArgumentHelp("Migration command, run with DATABASE_URL set to the scratch database.", valueName: "command"))
    var migrate: String?
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("SQL file of smoke checks: each query must return true (repeatable).", valueName: "file"))
    var smoke: [String] = []
    @Option(name: .long, help: "Fail the drill when RTO exceeds this many seconds.")
    var maxRtoSeconds: Double?
    @Option(name: .long, help: "Fail the drill when RPO exceeds this many minutes.")
    var maxRpoMinutes: Double?
    @Flag(name: .long, help: "Keep the scratch database after the drill.")
    var keep = false
    @Option(name: .long, help: ArgumentHelp("Directory for evidence.json, rowcount.csv, backup.log and drill-record.md.", valueName: "dir"))
    var evidenceDir = "drill-evidence"
    @Option(name: .long, help: ArgumentHelp("Write Prometheus text-format metrics here (atomically; a failed drill keeps the last success time). DRKIT_METRICS_DIR writes one file per scenario there instead.", valueName: "path"))
    var metricsFile: String?
    @Option(name: .long, help: ArgumentHelp("Push the drill's metrics to this Prometheus Pushgateway (job drkit; default DRKIT_PUSHGATEWAY).", valueName: "url"))
    var pushgateway: String?
    @Option(name: .long, help: "Environment name for the record (e.g. staging).")
    var environment: String?
    @Option(name: .long, help: ArgumentHelp("Who runs the drill (default: the OS user).", valueName: "name"))
    var `operator`: String?
    @Option(name: .long, help: "Incident commander, for the record.")
    var ic: String?
    @Option(name: .long, help: "Observer / recorder, for the record.")
    var observer: String?
    @Option(name: .long, help: "Parallel jobs for backup, verify and restore.")
    var jobs: Int?
    @OptionGroup var audit: AuditFlags
    @OptionGroup var s3: S3Flags
    @Flag(name: .long, help: "Print evidence.json on stdout.")
    var json = false

    @OptionGroup var signing: SigningFlags

    func validate() throws {
        if restoreLatest && freshBackup { throw ValidationError("give --restore-latest or --fresh-backup, not both") }
        if scenario == nil && repo == nil { throw ValidationError("give a scenario file, or at least --repo (with --db or --target)") }
        try validateJobs(jobs)
    }

    /// The flags, to lay over the scenario file.
    var overrides: DrillOverrides {
        var o = DrillOverrides()
        (o.name, o.repo, o.source, o.copyTo, o.restoreFrom) = (name, repo, db, copyTo, restoreFrom)
        (o.restoreLatest, o.freshBackup, o.keyFile, o.passphraseEnv) = (restoreLatest, freshBackup, keys.keyFile, keys.passphraseEnv)
        (o.target, o.migrate, o.smokeFiles, o.maxRtoSeconds, o.maxRpoMinutes) = (target, migrate, smoke, maxRtoSeconds, maxRpoMinutes)
        (o.keep, o.environment, o.jobs) = (keep, environment, jobs)
        (o.incidentCommander, o.observer, o.operatorName) = (ic, observer, self.operator)
        return o
    }

    func run() throws {
        try runWithCheckExitCodes(keeping: [DRKitError.Code.integrity.exitCode]) {
            let s = overrides.applied(to: try scenario.map(DrillScenario.load(path:)))
            let roles = s.roles ?? DrillScenario.Roles()
            var options = DrillRunner.Options(scenario: s, scenarioFile: scenario, evidenceDirectory: evidenceDir, metricsFile: metricsFile,
                                              operatorName: self.operator ?? roles.operator ?? RunbookRecorder.defaultOperator())
            options.s3 = s3.options
            options.signingKey = try signing.load()
            options.identityFiles = keys.identity
            options.metrics = MetricsFlags(metricsFile: metricsFile, pushgateway: pushgateway).publisher
            let console = json ? Console(outputToStderr: true) : Console.shared
            let report = try DrillRunner(options: options, audit: try audit.open(), console: console).run()
            if json {
                Console.shared.output(try JSONText.encode(report))
            } else {
                Console.shared.output("""
                    drill \(report.scenario): \(report.result.uppercased()) — RTO \(report.rtoSeconds.map { "\(Format.seconds($0)) s" } ?? "not reached"), \
                    RPO \(report.rpoSeconds.map { String(format: "%.1f min", $0 / 60) } ?? "unknown"), \(report.rows) rows restored
                    evidence: \(evidenceDir)/evidence.json, \(evidenceDir)/drill-record.md, \(evidenceDir)/drill-record.html, \(evidenceDir)/rowcount.csv, \(evidenceDir)/backup.log
                    """)
            }
            if !report.failedCriteria.isEmpty {
                let details = report.criteria.filter { !$0.passed }.map { "\($0.name) (\($0.rule); measured \($0.figure))" }
                throw DRKitError(.checkFailed, "drill \(report.scenario) failed: \(details.joined(separator: "; "))")
            }
        }
    }
}
