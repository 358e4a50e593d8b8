import ArgumentParser
import Common
import DRKit
import Foundation
import PostgresClient

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into a new scratch database, or a whole --all-databases run into a cluster, in parallel.",
        discussion: """
            The target database is created if it does not exist, or used if it is empty. A database with \
            user tables is refused unless --clean (drop and recreate it); the backup's own source database \
            is always refused. On failure a database created by the restore is dropped again. \
            Across versions: restoring into a newer PostgreSQL major than the backup's source is supported (an \
            upgrade path, e.g. 15 -> 18); an older major is refused before anything is created (exit 6), unless \
            --allow-older-server. A target server that lacks an extension the backup uses is refused up front, \
            naming the package to install. \
            --globals first creates the roles and tablespaces the backup carries that the target cluster lacks (an \
            existing role is never altered; each is reported), so owners and grants restore without --no-owner, and \
            gives the database its source's owner, privileges and settings. ID --globals-only --target-cluster \
            CONNINFO applies only the roles and tablespaces. --run ID --target-cluster CONNINFO rebuilds a whole cluster from one `backup --all-databases` run: globals first, then every database under \
            its own name; a target already holding one of them with tables in it is refused unless --clean. \
            --table/--schema restore part of any backup (pg_dump's patterns) with the DDL those tables need, chosen \
            on pg_dump's dependency graph stored in the backup: their schemas, types, functions, sequences, defaults, \
            constraints, indexes, triggers and privileges; entries that need a table left out (a foreign key to it) \
            are reported and skipped. --into-schema NAME puts them in a new schema of an existing database. \
            Point in time (needs `drkit stream`): --to-time TIMESTAMP (ISO 8601 with Z or an offset, or PostgreSQL's \
            timestamptz text), --to-lsn LSN or --to-latest restores the newest base backup linked to the change stream \
            at or before the target (or the backup named), then replays the archived transactions in commit order up to \
            and including the last one committed at or before the target, each applied atomically. A target past the end \
            of the archive is refused with what it covers (exit 2); a broken chain of segments is exit 5. \
            Planner statistics: a backup of PostgreSQL 18+ carries its tables' statistics; a whole restore onto 18+ \
            loads them once the indexes are built instead of running ANALYZE (tables the source never analyzed, and \
            tables with CREATE STATISTICS objects, are analyzed). Otherwise, or with --analyze, every table is analyzed.
            """)

    @Argument(help: "Backup id (or a unique prefix of one), or `latest`.")
    var backup: String?
    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var rate: RateFlags
    @Option(name: .long, help: ArgumentHelp("Target database: libpq conninfo or postgres:// URL naming the database to create.", valueName: "conninfo"))
    var target: String?
    @Flag(name: .long, help: "Create the backup's roles and tablespaces that the target cluster lacks, before the schema; then set the database's owner, privileges and settings.")
    var globals = false
    @Option(name: .long, help: ArgumentHelp("Restore only tables matching this pg_dump pattern (repeatable), with the DDL they need; foreign keys to tables left out are reported and skipped.", valueName: "pattern"))
    var table: [String] = []
    @Option(name: .long, help: ArgumentHelp("Restore only the schemas matching this pattern (repeatable), with what they need.", valueName: "pattern"))
    var schema: [String] = []
    @Option(name: .long, help: ArgumentHelp("With --table/--schema of one schema: restore into this new schema of the existing --target database (refused if it exists; nothing else is touched), e.g. to compare and copy rows back.", valueName: "name"))
    var intoSchema: String?
    @Flag(name: .long, help: "Only create the backup's roles and tablespaces that --target-cluster lacks (a globals-only backup, or any backup made with globals).")
    var globalsOnly = false
    @Option(name: .customLong("run"), help: ArgumentHelp("Restore every database of this `backup --all-databases` run (see `drkit list`), with the globals; needs --target-cluster.", valueName: "run-id"))
    var runId: String?
    @Option(name: .long, help: ArgumentHelp("With --run: the cluster to rebuild (conninfo or URL; its database is used for the roles, default postgres).", valueName: "conninfo"))
    var targetCluster: String?
    @Option(name: .long, help: ArgumentHelp("Point-in-time restore: replay the change archive up to the last transaction committed at or before this time (e.g. 2026-12-04T20:06:58.704019Z or '2026-12-04 21:06:58+01').", valueName: "timestamp"))
    var toTime: String?
    @Option(name: .long, help: ArgumentHelp("Point-in-time restore: replay up to the last transaction whose commit is at or before this WAL position (e.g. 0/16B3748).", valueName: "lsn"))
    var toLsn: String?
    @Flag(name: .long, help: "Point-in-time restore: replay everything the change archive holds.")
    var toLatest = false
    @OptionGroup var keys: KeyFlags
    @Option(name: .long, help: "Parallel worker connections.")
    var jobs = 2
    @Flag(name: .long, help: "Drop and recreate the target database if it has user tables.")
    var clean = false
    @Flag(name: .long, help: "Do not restore ownership (ALTER ... OWNER TO): objects belong to the restoring user. For clusters without the source's roles.")
    var noOwner = false
    @Flag(name: .long, help: "Do not restore privileges (GRANT/REVOKE).")
    var noPrivileges = false
    @Flag(name: .long, help: "Try a target server of an older major version than the backup's source (refused by default: its DDL may fail midway).")
    var allowOlderServer = false
    @Flag(name: .long, help: "ANALYZE every table, even when the backup carries planner statistics (PostgreSQL 18+) the target could load.")
    var analyze = false
    @OptionGroup var output: OutputFlags

    func validate() throws {
        try validateJobs(jobs)
        if [toTime != nil, toLsn != nil, toLatest].filter({ $0 }).count > 1 { throw ValidationError("give one of --to-time, --to-lsn and --to-latest") }
        if let toTime, CommitTime.parse(toTime) == nil {
            throw ValidationError("--to-time \(toTime): not a timestamp with a time zone (e.g. 2026-12-04T20:06:58.704019Z, 2026-12-04T21:06:58+01:00 or '2026-12-04 20:06:58+00')")
        }
        if let toLsn, LSN(toLsn) == nil { throw ValidationError("--to-lsn \(toLsn): not a WAL position like 0/16B3748") }
        if pointInTime != nil && (globalsOnly || runId != nil) { throw ValidationError("--to-time, --to-lsn and --to-latest restore one database: not with --globals-only or --run") }
        if globalsOnly {
            guard backup != nil, targetCluster != nil, target == nil, runId == nil else {
                throw ValidationError("--globals-only takes a backup id (or latest) and --target-cluster CONNINFO")
            }
        } else if runId != nil {
            guard backup == nil, target == nil else { throw ValidationError("--run restores a whole run into --target-cluster: give no backup id and no --target") }
            guard targetCluster != nil else { throw ValidationError("--run needs --target-cluster CONNINFO") }
            guard !noOwner else { throw ValidationError("--run restores the roles, so --no-owner does not apply") }
        } else {
            guard backup != nil else { throw ValidationError("give a backup id (or latest), or --run ID") }
            guard target != nil else { throw ValidationError("--target CONNINFO is required") }
            guard targetCluster == nil else { throw ValidationError("--target-cluster goes with --run") }
            if globals && noOwner { throw ValidationError("--globals restores the owners' roles: leave out --no-owner") }
            if intoSchema != nil && table.isEmpty && schema.isEmpty { throw ValidationError("--into-schema goes with --table or --schema") }
            if intoSchema != nil && (globals || clean) { throw ValidationError("--into-schema only adds a new schema: not with --globals or --clean") }
            if let intoSchema {
                guard !intoSchema.isEmpty, intoSchema.utf8.count <= 63 else { throw ValidationError("--into-schema takes a schema name of 1 to 63 bytes") }
                guard !intoSchema.lowercased().hasPrefix("pg_") else {
                    throw ValidationError("--into-schema \(intoSchema): names beginning with pg_ are reserved for PostgreSQL's own schemas")
                }
            }
        }
    }

    func run() throws {
        try runReportingErrors {
            Console.shared.quiet = output.quiet
            let limiter = try rate.limiter()
            let repo = try repository.open(create: false).limited(to: limiter)
            var options = RestoreOptions(reference: backup ?? "", targetConninfo: target ?? "", keys: keys.keyOptions)
            options.jobs = jobs
            options.clean = clean
            options.noOwner = noOwner
            options.noPrivileges = noPrivileges
            options.allowOlderServer = allowOlderServer
            options.analyze = analyze
            options.showProgress = !output.quiet && !output.json
            options.globals = globals ? .cluster : .none
            options.tables = table
            options.schemas = schema
            options.intoSchema = intoSchema
            options.pointInTime = pointInTime
            if globalsOnly, let backup, let targetCluster {
                let report = try ClusterRestore.applyGlobals(of: backup, targetCluster: targetCluster, keys: keys.keyOptions, repository: repo)
                Console.shared.output(output.json ? try JSONText.encode(report) : Restore.describe(report))
                if let failed = report.failed.first {
                    throw DRKitError(.database, "\(report.failed.count) globals statement(s) failed, first: \(failed.kind) \(failed.name): \(failed.detail ?? "")")
                }
                return
            }
            if let run = runId, let targetCluster { return try restoreRun(run, into: targetCluster, options: options, repository: repo) }
            let result = try RestoreEngine(options: options, repository: repo).run()
            if output.json {
                Console.shared.output(try JSONText.encode(RestoreReport(result)))
            } else {
                if let report = result.globals { Console.shared.output(Restore.describe(report)) }
                Console.shared.output(Restore.completionText(result))
            }
        }
    }

    var pointInTime: RecoveryTarget? {
        if let toTime, let micros = CommitTime.parse(toTime) { return .time(micros) }
        if let toLsn, let lsn = LSN(toLsn) { return .lsn(lsn) }
        return toLatest ? .latest : nil
    }

    private func restoreRun(_ run: String, into cluster: String, options: RestoreOptions, repository repo: Repository) throws {
        let json = output.json
        let result = try ClusterRestore.run(run, targetCluster: cluster, options: options, repository: repo) { restored in
            if !json { Console.shared.output(Restore.completionText(restored)) }
        }
        if output.json {
            Console.shared.output(try JSONText.encode(ClusterRestoreReport(result)))
        } else {
            Console.shared.output(Restore.describe(result.globals))
            Console.shared.output("run \(run) restored: \(result.databases.count) database(s)\(result.failures.isEmpty ? "" : ", \(result.failures.count) FAILED (\(result.failures.map(\.database).joined(separator: ", ")))"), \(result.globals.failed.count) globals statement(s) failed, \(Format.seconds(result.duration)) s")
        }
        if let first = result.failures.first {
            printError("run \(run): database \(first.database) was not restored: \(first.error.message)")
            throw ExitCode(first.error.code.exitCode)
        }
    }

    static func completionText(_ result: RestoreResult) -> String {
        let phases = result.phases.map { "\($0.name) \(Format.seconds($0.seconds))s" }.joined(separator: ", ")
        let partial = result.partialTables.map { tables in
            "partial: \(tables.joined(separator: ", "))" + result.skipped.map { "\nskipped: \($0)" }.joined() + "\n"
        } ?? ""
        let replay = result.replay.map { r in
            "point in time: base \(r.baseBackupId) at \(r.basePosition), then \(r.transactions) transactions (\(r.changes) row changes\(r.schemaChanges > 0 ? ", \(r.schemaChanges) schema changes" : "")) replayed from lineage \(r.lineage) in \(Format.seconds(r.seconds)) s (\(Int(r.transactionsPerSecond.rounded())) transactions/s); reached \(r.reachedCommitTime.map { "commit \($0)" } ?? "the base itself") at \(r.reachedPosition) (target: \(r.target))\n"
        } ?? ""
        return partial + replay + """
            restore of \(result.backupId) into \(result.database) complete: \(result.tables) tables, \(result.rows) rows\(result.largeObjects > 0 ? ", \(result.largeObjects) large objects" : "")
            restore duration (RTO): \(Format.seconds(result.duration)) s (\(phases))
            """
    }

    /// One line per role, membership, setting, tablespace and database property, then what the backup left out.
    static func describe(_ report: GlobalsReport) -> String {
        (report.lines.map { "\($0.kind) \($0.name): \($0.outcome)\($0.detail.map { " (\($0))" } ?? "")" }
            + report.omitted.map { "note: \($0)" }).joined(separator: "\n")
    }
}

struct ClusterRestoreReport: Encodable {
    var run: String
    var globals: GlobalsReport
    var databases: [RestoreReport]
    var failures: [DatabaseFailureReport]
    var durationSeconds: Double

    init(_ result: ClusterRestoreResult) {
        run = result.run
        globals = result.globals
        databases = result.databases.map(RestoreReport.init)
        failures = result.failures.map { DatabaseFailureReport(database: $0.database, error: $0.error.message) }
        durationSeconds = result.duration
    }
}

struct RestoreReport: Encodable {
    struct Phase: Encodable {
        var name: String
        var seconds: Double
    }

    var backupId: String
    var database: String
    var tables: Int
    var rows: Int64
    var durationSeconds: Double
    var phases: [Phase]
    var largeObjects: Int64
    var globals: GlobalsReport?
    var partialTables: [String]?
    var skipped: [String]
    var pointInTime: ReplayReport?

    init(_ result: RestoreResult) {
        pointInTime = result.replay
        partialTables = result.partialTables
        skipped = result.skipped
        largeObjects = result.largeObjects
        globals = result.globals
        backupId = result.backupId
        database = result.database
        tables = result.tables
        rows = result.rows
        durationSeconds = result.duration
        phases = result.phases.map { Phase(name: $0.name, seconds: $0.seconds) }
    }
}
