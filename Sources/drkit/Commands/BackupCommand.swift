import Archive
import ArgumentParser
import Common
import DRKit
import Foundation

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take a consistent, compressed, encrypted backup of one database.",
        discussion: """
            One snapshot covers schema (pg_dump --snapshot), data (COPY on --jobs workers) and sequence \
            values. pg_dump (for DDL only) must be of the server's major version or newer: DRKIT_PG_DUMP names one, \
            else drkit takes the oldest fitting one in /usr/lib/postgresql/N/bin or on PATH, and says what to install \
            when none fits (exit 7). Encryption needs a key (--key-file, DRKIT_KEY, or --passphrase-env); --no-encrypt must \
            be explicit. The manifest is written last: an interrupted backup is never listed or restored.
            """)

    @Option(name: .long, help: ArgumentHelp("Source database: libpq conninfo or postgres:// URL.", valueName: "conninfo"))
    var db: String
    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var keys: KeyFlags
    @Flag(name: .long, help: "Store the backup unencrypted.")
    var noEncrypt = false
    @Option(name: .long, help: "Parallel worker connections.")
    var jobs = 2
    @Option(name: .long, help: ArgumentHelp("Compression: zstd[:1-19], gzip[:1-9] or none (default \(Codec.default)).", valueName: "codec[:level]"))
    var compress: String?
    @Option(name: .long, help: .hidden)
    var compressLevel: Int?
    @Option(name: .long, help: ArgumentHelp("Split tables larger than this many MiB into several objects.", valueName: "MiB"))
    var splitSize = 64
    @Option(name: .long, help: ArgumentHelp("Report tables that lost more than this share of their rows or bytes since the previous backup of the database (recorded in the manifest; default 20%).", valueName: "percent"))
    var warnShrink = "20%"
    @Option(name: .long, help: ArgumentHelp("Exit 1 (the backup stays committed) when a table lost more than this share since the previous backup.", valueName: "percent"))
    var failOnShrink: String?
    @Option(name: .long, help: ArgumentHelp("Once the backup has committed, copy it to this repository too (repeatable; e.g. a second region). A failed copy never touches the backup: it exits 8 naming the repository.", valueName: "repo"))
    var copyTo: [String] = []
    @OptionGroup var lock: ObjectLockFlags
    @OptionGroup var metrics: MetricsFlags
    @OptionGroup var output: OutputFlags

    func validate() throws {
        try validateJobs(jobs)
        if copyTo.contains(repository.repo) { throw ValidationError("--copy-to names the backup's own repository") }
        guard Backup.fraction(warnShrink) != nil else { throw ValidationError("--warn-shrink takes a percentage like 20% (0-100)") }
        if let failOnShrink, Backup.fraction(failOnShrink) == nil { throw ValidationError("--fail-on-shrink takes a percentage like 50% (0-100)") }
        _ = try codec()
        guard splitSize >= 1 else { throw ValidationError("--split-size must be at least 1 MiB") }
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
            let key = try keys.keyOptions.resolve()
            if noEncrypt && key != nil {
                throw DRKitError(.usage, "--no-encrypt given together with a key; choose one")
            }
            if !noEncrypt && key == nil {
                throw DRKitError(.usage, "no key: give --key-file, DRKIT_KEY or --passphrase-env (or --no-encrypt to store the backup in the clear)")
            }
            let repo = try repository.open(create: true).locking(try lock.lock())
            var options = BackupOptions(conninfo: db, key: key)
            options.jobs = jobs
            options.codec = try codec()
            if compressLevel != nil { Console.shared.note("--compress-level is deprecated: use --compress gzip:\(compressLevel!)") }
            options.splitBytes = Int64(splitSize) << 20
            options.warnShrink = Backup.fraction(warnShrink)!
            options.failShrink = failOnShrink.flatMap(Backup.fraction)
            options.showProgress = !output.quiet && !output.json
            let database = CommandMetrics.databaseLabel(db)
            let result = try metrics.reporting({ (result: BackupResult?, started, finished) in
                CommandMetrics.backup(database: result?.summary.database ?? database, repository: repo.store.location, result: result,
                                      startedAt: started, finishedAt: finished,
                                      inventory: result == nil ? nil : (try? repo.backups())?.map(\.summary))
            }) { try BackupEngine(options: options, repository: repo).run() }
            let copies = copyTo.map { copy(result.summary.backupId, from: repo, to: $0) }
            if output.json {
                var report = BackupReport(result)
                report.copies = copies
                Console.shared.output(try JSONText.encode(report))
            } else {
                let rows = result.manifest.tables.reduce(0) { $0 + $1.rows }
                Console.shared.output("""
                    backup \(result.summary.backupId) complete: \(result.summary.tableCount) tables, \(rows) rows, \
                    \(Format.bytes(result.summary.storedBytes)) stored in \(result.summary.objectCount) objects, \
                    \(Format.seconds(result.duration)) s\(result.summary.encrypted ? ", encrypted (key \(result.summary.keyFingerprint ?? "?"))" : ", NOT encrypted")
                    """)
                for copy in copies {
                    Console.shared.output(copy.error.map { "copy to \(copy.repository) FAILED: \($0)" }
                        ?? "copied to \(copy.repository): \(copy.objects) objects, \(Format.bytes(copy.bytes)) in \(Format.seconds(copy.seconds)) s, every object's SHA-256 checked")
                }
            }
            try reportFailedCopies(copies, backupId: result.summary.backupId, primary: repo.store.location)
        }
    }

    /// Copies the committed backup; any failure is recorded, never thrown: the backup stands.
    private func copy(_ backupId: String, from primary: Repository, to location: String) -> BackupCopyReport {
        var report = BackupCopyReport(repository: location)
        do {
            let destination = try Repository.open(location, create: true, s3: repository.s3.options).locking(primary.objectLock)
            report.repository = destination.store.location
            var options = RepositoryCopy.Options()
            options.jobs = jobs
            options.showProgress = !output.quiet && !output.json
            let outcome = try RepositoryCopy.run(from: primary, to: destination, selection: .backup(backupId), options: options).backups[0]
            report.objects = outcome.objectsCopied
            report.bytes = outcome.bytesCopied
            report.seconds = outcome.seconds
            report.error = outcome.status == .removedAtSource ? "the backup was removed from the primary (forget) before it was copied" : outcome.error
        } catch {
            report.error = DRKitError.wrap(error).message
        }
        return report
    }

    private func reportFailedCopies(_ copies: [BackupCopyReport], backupId: String, primary: String) throws {
        let failed = copies.filter { $0.error != nil }
        guard !failed.isEmpty else { return }
        printError("backup \(backupId) is committed to \(primary), but the copy to \(failed.map(\.repository).joined(separator: " and ")) failed (\(failed[0].error ?? "?")); run `drkit repo copy \(backupId) --from ... --to ...` to retry")
        throw ExitCode(DRKitError.Code.copyFailed.exitCode)
    }
}

struct BackupCopyReport: Encodable {
    var repository: String
    var objects = 0
    var bytes: Int64 = 0
    var seconds = 0.0
    /// nil when the copy succeeded.
    var error: String?
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
    var copies: [BackupCopyReport] = []

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
    }
}
