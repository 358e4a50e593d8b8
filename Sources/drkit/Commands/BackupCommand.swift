import Archive
import ArgumentParser
import Common
import DRKit
import Foundation

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take a consistent, compressed, encrypted backup of one database, or of every database of a cluster.",
        discussion: """
            One snapshot covers schema (pg_dump --snapshot), data (COPY on --jobs workers) and sequence \
            values. pg_dump (for DDL only) must be of the server's major version or newer: DRKIT_PG_DUMP names one, \
            else drkit takes the oldest fitting one in /usr/lib/postgresql/N/bin or on PATH, and says what to install \
            when none fits (exit 7). Encryption needs a key (--key-file, DRKIT_KEY, or --passphrase-env); --no-encrypt must \
            be explicit. The manifest is written last: an interrupted backup is never listed or restored. \
            --table/--schema/--exclude-table/--exclude-schema/--exclude-table-data take pg_dump's patterns and \
            select exactly what pg_dump selects (drkit asks pg_dump, in the backup's snapshot); the selection is \
            recorded in the manifest and `list` marks the backup partial. With --table or --schema, large objects \
            and extension data stay out, as with pg_dump. \
            --globals adds the cluster's roles (attributes, memberships, settings), tablespaces and the database's \
            owner, privileges and settings, without password hashes unless --role-passwords (superuser only); \
            --globals-only stores just those, listed under the database name (globals). \
            --all-databases backs up every database that accepts connections (templates aside, minus \
            --exclude-database patterns), each in its own snapshot and backup, all with the globals and one run id \
            (`list` shows it; `restore --run` rebuilds the cluster). A database that fails does not stop the others; \
            the run then exits with the first failure's code.
            """)

    @Option(name: .long, help: ArgumentHelp("Source database: libpq conninfo or postgres:// URL (with --all-databases, any database of the cluster).", valueName: "conninfo"))
    var db: String
    @Flag(name: .long, help: "Also carry the cluster's roles, memberships, role and database settings, tablespaces, and the database's owner and privileges.")
    var globals = false
    @Flag(name: .long, help: "Back up only the cluster's globals (roles, memberships, settings, tablespaces, database properties), listed as database (globals).")
    var globalsOnly = false
    @Flag(name: .long, help: "With --globals, --globals-only or --all-databases: carry role password hashes too (needs a superuser).")
    var rolePasswords = false
    @Flag(name: .long, help: "Back up every database of the cluster (one backup each, one run id), with the globals.")
    var allDatabases = false
    @Option(name: .long, help: ArgumentHelp("With --all-databases: leave out databases matching this pattern (repeatable; * and ? wildcards, \"Name\" literally).", valueName: "pattern"))
    var excludeDatabase: [String] = []
    @Option(name: .long, help: ArgumentHelp("Back up only tables matching this pg_dump pattern (repeatable; schema.table, * and ?, \"Quoted\" for case). The backup is partial.", valueName: "pattern"))
    var table: [String] = []
    @Option(name: .long, help: ArgumentHelp("Back up only schemas matching this pg_dump pattern (repeatable). The backup is partial.", valueName: "pattern"))
    var schema: [String] = []
    @Option(name: .long, help: ArgumentHelp("Leave out tables matching this pattern (repeatable).", valueName: "pattern"))
    var excludeTable: [String] = []
    @Option(name: .long, help: ArgumentHelp("Leave out schemas matching this pattern (repeatable).", valueName: "pattern"))
    var excludeSchema: [String] = []
    @Option(name: .long, help: ArgumentHelp("Keep the definition of tables matching this pattern but not their rows (repeatable).", valueName: "pattern"))
    var excludeTableData: [String] = []
    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var keys: KeyFlags
    @OptionGroup var recipientFlags: RecipientFlags
    @OptionGroup var signing: SigningFlags
    @OptionGroup var rate: RateFlags
    @Flag(name: .long, help: "Store the backup unencrypted.")
    var noEncrypt = false
    @Option(name: .long, help: "Parallel worker connections.")
    var jobs = 2
    @Option(name: .long, help: ArgumentHelp("Compression: zstd[:1-19], gzip[:1-9] or none (default \(Codec.default)).", valueName: "codec[:level]"))
    var compress: String?
    @Option(name: .long, help: .hidden)
    var compressLevel: Int?
    @Option(name: .long, help: ArgumentHelp("Split tables larger than this many MiB into several objects (the size counts TOAST: pg_table_size).", valueName: "MiB"))
    var splitSize = 64
    @Option(name: .long, help: ArgumentHelp("Pack tables smaller than this many KiB (with their TOAST: pg_table_size) together into shared objects (0: every table in objects of its own).", valueName: "KiB"))
    var packBelow = 1024
    @Option(name: .long, help: ArgumentHelp("Report tables that lost more than this share of their rows or bytes since the previous backup of the database (recorded in the manifest; default 20%).", valueName: "percent"))
    var warnShrink = "20%"
    @Option(name: .long, help: ArgumentHelp("Exit 1 (the backup stays committed) when a table lost more than this share since the previous backup.", valueName: "percent"))
    var failOnShrink: String?
    @Option(name: .long, help: ArgumentHelp("Once the backup has committed, copy it to this repository too (repeatable; e.g. a second region). A failed copy never touches the backup: it exits 8 naming the repository.", valueName: "repo"))
    var copyTo: [String] = []
    @Option(name: .long, help: ArgumentHelp("On a hot standby: refuse (exit 1, nothing written) when its replay is further behind than this (5m, 30s; default 5m). The backup's data are as of the standby's last replayed commit, recorded as its effective time.", valueName: "duration"))
    var maxStandbyLag = "5m"
    @Flag(name: .long, help: "On a hot standby further behind than --max-standby-lag: warn and back up anyway.")
    var allowStandbyLag = false
    @OptionGroup var lock: ObjectLockFlags
    @OptionGroup var metrics: MetricsFlags
    @OptionGroup var output: OutputFlags

    func validate() throws {
        guard Durations.parse(maxStandbyLag) != nil else { throw ValidationError("--max-standby-lag takes a duration with a unit (5m, 30s)") }
        try validateJobs(jobs)
        if copyTo.contains(repository.repo) { throw ValidationError("--copy-to names the backup's own repository") }
        guard Backup.fraction(warnShrink) != nil else { throw ValidationError("--warn-shrink takes a percentage like 20% (0-100)") }
        if let failOnShrink, Backup.fraction(failOnShrink) == nil { throw ValidationError("--fail-on-shrink takes a percentage like 50% (0-100)") }
        _ = try codec()
        guard splitSize >= 1 else { throw ValidationError("--split-size must be at least 1 MiB") }
        guard packBelow >= 0 else { throw ValidationError("--pack-below takes a size in KiB, 0 or more") }
        if rolePasswords && !globals && !globalsOnly && !allDatabases { throw ValidationError("--role-passwords needs --globals, --globals-only or --all-databases") }
        if globalsOnly && (allDatabases || !selection.isEmpty) { throw ValidationError("--globals-only backs up no database: not with --all-databases, --table or --schema") }
        if !excludeDatabase.isEmpty && !allDatabases { throw ValidationError("--exclude-database needs --all-databases") }
        if allDatabases && !selection.isEmpty { throw ValidationError("--table, --schema and their exclusions select within one database: not with --all-databases") }
        if allDatabases && !copyTo.isEmpty { throw ValidationError("--copy-to is not available with --all-databases yet: run `drkit repo copy --all` after the run") }
    }

    var selection: SelectionRecord {
        SelectionRecord(tables: table, schemas: schema, excludeTables: excludeTable, excludeSchemas: excludeSchema, excludeTableData: excludeTableData)
    }

    /// "20%" or "20" → 0.2; nil outside 0...100.
    static func fraction(_ text: String) -> Double? {
        guard let value = Double(text.hasSuffix("%") ? String(text.dropLast()) : text), (0...100).contains(value) else { return nil }
        return value / 100
    }

    /// `--compress-level N` (before codecs existed) still means gzip level N.
    func codec() throws -> Codec {
        if let compressLevel {
            guard compress == nil else { throw ValidationError("--compress-level is the old form of --compress gzip:N; give only --compress") }
            guard (1...9).contains(compressLevel) else { throw ValidationError("--compress-level must be 1-9 (use --compress none for no compression)") }
            return Codec(algorithm: .gzip, level: compressLevel)
        }
        do { return try compress.map(Codec.parse) ?? .default } catch { throw ValidationError("--compress: \(error)") }
    }

    func run() throws {
        try runReportingErrors {
            Console.shared.quiet = output.quiet
            // Every repository is checked before the backup: a bad --copy-to must not surface after the commit.
            for destination in copyTo { try checkRepositoryLocation(destination, flag: "--copy-to") }
            let recipients = try recipientFlags.recipients()
            let key = try keys.encryptionKey(noEncrypt: noEncrypt, what: "the backup", recipients: recipients)
            let limiter = try rate.limiter()
            let repo = try repository.open(create: true).locking(try lock.lock()).limited(to: limiter)
            var options = BackupOptions(conninfo: db, key: key)
            options.recipients = recipients
            options.signingKey = try signing.load()
            options.jobs = jobs
            options.codec = try codec()
            if compressLevel != nil { Console.shared.note("--compress-level is deprecated: use --compress gzip:\(compressLevel!)") }
            options.splitBytes = Int64(splitSize) << 20
            options.packBelowBytes = Int64(packBelow) << 10
            options.warnShrink = Backup.fraction(warnShrink)!
            options.failShrink = failOnShrink.flatMap(Backup.fraction)
            options.showProgress = !output.quiet && !output.json
            options.includeGlobals = globals
            options.rolePasswords = rolePasswords
            options.selection = selection
            options.maxStandbyLag = Durations.parse(maxStandbyLag)!
            options.allowStandbyLag = allowStandbyLag
            options.globalsOnly = globalsOnly
            if allDatabases { return try backUpCluster(options, repository: repo) }
            let database = CommandMetrics.databaseLabel(db)
            let result = try metrics.reporting({ (result: BackupResult?, started, finished) in
                CommandMetrics.backup(database: result?.summary.database ?? database, repository: repo.store.location, result: result,
                                      startedAt: started, finishedAt: finished,
                                      inventory: result == nil ? nil : (try? repo.backups())?.map(\.summary))
            }) { try BackupEngine(options: options, repository: repo).run() }
            let copies = copyTo.map {
                CommittedCopy.run(result.summary.backupId, from: repo, to: $0, settings: repository.s3.options, jobs: jobs,
                                  showProgress: !output.quiet && !output.json)
            }
            if output.json {
                var report = BackupReport(result)
                report.copies = copies
                Console.shared.output(try JSONText.encode(report))
            } else {
                Console.shared.output(Backup.completionLine(result))
                for copy in copies {
                    Console.shared.output(copy.error.map { "copy to \(copy.repository) FAILED: \($0)" }
                        ?? "copied to \(copy.repository): \(copy.objects) objects, \(Format.bytes(copy.bytes)) in \(Format.seconds(copy.seconds)) s, every object's SHA-256 checked")
                }
            }
            try reportFailedCopies(copies, backupId: result.summary.backupId, primary: repo.store.location)
        }
    }

    static func completionLine(_ result: BackupResult) -> String {
        let rows = result.manifest.tables.reduce(0) { $0 + $1.rows }
        let largeObjects = result.manifest.largeObjectCount
        return """
            backup \(result.summary.backupId) of \(result.summary.database)\(result.manifest.selection != nil ? " (partial)" : "") complete: \(result.summary.tableCount) tables, \(rows) rows\
            \(largeObjects > 0 ? ", \(largeObjects) large objects" : "")\(result.manifest.globals != nil ? ", with globals" : ""), \
            \(Format.bytes(result.summary.storedBytes)) stored in \(result.summary.objectCount) objects, \
            \(Format.seconds(result.duration)) s\(result.summary.encrypted ? ", encrypted (key \(result.summary.keyFingerprint ?? "?"))" : ", NOT encrypted")
            """
    }

    /// `--all-databases`: one backup per database, each reported (and its metrics published) as it
    /// commits; a failed database is reported and the others go on.
    private func backUpCluster(_ options: BackupOptions, repository repo: Repository) throws {
        let perDatabase = ClusterBackupMetrics(publisher: metrics.publisher, repository: repo)
        let result = try ClusterBackup.run(options: options, excluding: excludeDatabase, repository: repo) { backup in
            if !output.json { Console.shared.output(Backup.completionLine(backup)) }
            perDatabase.committed(backup).forEach { Console.shared.note("warning: \($0)") }
        }
        perDatabase.failed(result.failures.map(\.database)).forEach { Console.shared.note("warning: \($0)") }
        if output.json {
            Console.shared.output(try JSONText.encode(ClusterBackupReport(result)))
        } else {
            Console.shared.output("run \(result.run): \(result.backups.count) database(s) backed up\(result.failures.isEmpty ? "" : ", \(result.failures.count) FAILED (\(result.failures.map(\.database).joined(separator: ", ")))")\(result.skipped.isEmpty ? "" : "; excluded: \(result.skipped.joined(separator: ", "))")")
            for line in result.globals.omitted { Console.shared.output("note: \(line)") }
        }
        if let first = result.failures.first {
            printError("run \(result.run): database \(first.database) was not backed up: \(first.error.message)")
            throw ExitCode(first.error.code.exitCode)
        }
    }

    private func reportFailedCopies(_ copies: [CommittedCopy], backupId: String, primary: String) throws {
        let failed = copies.filter { $0.error != nil }
        guard !failed.isEmpty else { return }
        printError("backup \(backupId) is committed to \(primary), but the copy to \(failed.map(\.repository).joined(separator: " and ")) failed (\(failed[0].error ?? "?")); run `drkit repo copy \(backupId) --from ... --to ...` to retry")
        throw ExitCode(DRKitError.Code.copyFailed.exitCode)
    }
}

/// One database of a cluster run that failed (`backup --all-databases`, `restore --run`).
struct DatabaseFailureReport: Encodable {
    var database: String
    var error: String
}

struct ClusterBackupReport: Encodable {
    var run: String
    var backups: [BackupReport]
    var failures: [DatabaseFailureReport]
    var excluded: [String]
    var omitted: [String]

    init(_ result: ClusterBackupResult) {
        run = result.run
        backups = result.backups.map(BackupReport.init)
        failures = result.failures.map { DatabaseFailureReport(database: $0.database, error: $0.error.message) }
        excluded = result.skipped
        omitted = result.globals.omitted
    }
}

struct BackupReport: Encodable {
    var backupId: String
    var database: String
    var snapshotTime: String
    var tables: Int
    var rows: Int64
    var objects: Int
    var storedBytes: Int64
    var durationSeconds: Double
    var encrypted: Bool
    var keyFingerprint: String?
    /// The anomaly check against the previous backup of the database.
    var shrinkage: ShrinkReport?
    var copies: [CommittedCopy] = []
    var run: String?
    var largeObjects: Int64
    var globals: Bool
    var selection: SelectionRecord?

    init(_ result: BackupResult) {
        backupId = result.summary.backupId
        database = result.summary.database
        snapshotTime = Timestamps.iso8601(result.summary.snapshotTime)
        tables = result.summary.tableCount
        rows = result.manifest.tables.reduce(0) { $0 + $1.rows }
        objects = result.summary.objectCount
        storedBytes = result.summary.storedBytes
        durationSeconds = result.duration
        encrypted = result.summary.encrypted
        keyFingerprint = result.summary.keyFingerprint
        shrinkage = result.manifest.shrinkage
        run = result.manifest.run
        largeObjects = result.manifest.largeObjectCount
        globals = result.manifest.globals != nil
        selection = result.manifest.selection
    }
}
