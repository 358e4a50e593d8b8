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
            values. Encryption needs a key (--key-file, DRKIT_KEY, or --passphrase-env); --no-encrypt must \
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
    @OptionGroup var output: OutputFlags

    func validate() throws {
        try validateJobs(jobs)
        _ = try codec()
        guard splitSize >= 1 else { throw ValidationError("--split-size must be at least 1 MiB") }
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
            let repo = try repository.open(create: true)
            var options = BackupOptions(conninfo: db, key: key)
            options.jobs = jobs
            options.codec = try codec()
            if compressLevel != nil { Console.shared.note("--compress-level is deprecated: use --compress gzip:\(compressLevel!)") }
            options.splitBytes = Int64(splitSize) << 20
            options.showProgress = !output.quiet && !output.json
            let result = try BackupEngine(options: options, repository: repo).run()
            if output.json {
                Console.shared.output(try JSONText.encode(BackupReport(result)))
            } else {
                let rows = result.manifest.tables.reduce(0) { $0 + $1.rows }
                Console.shared.output("""
                    backup \(result.summary.backupId) complete: \(result.summary.tableCount) tables, \(rows) rows, \
                    \(Format.bytes(result.summary.storedBytes)) stored in \(result.summary.objectCount) objects, \
                    \(Format.seconds(result.duration)) s\(result.summary.encrypted ? ", encrypted (key \(result.summary.keyFingerprint ?? "?"))" : ", NOT encrypted")
                    """)
            }
        }
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
    }
}
