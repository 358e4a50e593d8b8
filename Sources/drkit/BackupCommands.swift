import ArgumentParser
import Foundation
import Archive
import Common
import DRKit

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
    @Option(name: .long, help: ArgumentHelp("Compression: gzip[:1-9], zstd[:1-19] or none (default \(Codec.default)).", valueName: "codec[:level]"))
    var compress = Codec.default.description
    @Option(name: .long, help: ArgumentHelp("Split tables larger than this many MiB into several objects.", valueName: "MiB"))
    var splitSize = 64
    @OptionGroup var output: OutputFlags

    func validate() throws {
        try validateJobs(jobs)
        do { _ = try Codec.parse(compress) } catch { throw ValidationError("--compress: \(error)") }
        guard splitSize >= 1 else { throw ValidationError("--split-size must be at least 1 MiB") }
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
            options.codec = try Codec.parse(compress)
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

enum JSONText {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONCoding.encoder.encode(value), as: UTF8.self)
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the completed backups in a repository, newest first (no key needed).")

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputFlags

    func run() throws {
        try runReportingErrors {
            let repo = try repository.open(create: false)
            let summaries = try repo.backups().map(\.summary)
            if output.json {
                Console.shared.output(try JSONText.encode(summaries))
                return
            }
            if summaries.isEmpty {
                Console.shared.output("no completed backups in \(repo.store.location)")
                return
            }
            var lines = ["BACKUP ID                 SNAPSHOT (UTC)            DATABASE             TABLES      STORED  ENCRYPTED"]
            for s in summaries {
                lines.append([
                    s.backupId.padding(toLength: 25, withPad: " ", startingAt: 0),
                    Timestamps.iso8601(s.snapshotTime).padding(toLength: 25, withPad: " ", startingAt: 0),
                    s.database.padding(toLength: 20, withPad: " ", startingAt: 0),
                    String(s.tableCount).leftPadded(6),
                    Format.bytes(s.storedBytes).leftPadded(11),
                    s.encrypted ? " yes (\(s.keyFingerprint ?? "?"))" : " no",
                ].joined(separator: " "))
            }
            Console.shared.output(lines.joined(separator: "\n"))
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into a new scratch database, in parallel.",
        discussion: """
            The target database is created if it does not exist, or used if it is empty. A database with \
            user tables is refused unless --clean (drop and recreate it); the backup's own source database \
            is always refused. On failure a database created by the restore is dropped again.
            """)

    @Argument(help: "Backup id (or a unique prefix of one), or `latest`.")
    var backup: String
    @OptionGroup var repository: RepositoryOptions
    @Option(name: .long, help: ArgumentHelp("Target database: libpq conninfo or postgres:// URL naming the database to create.", valueName: "conninfo"))
    var target: String
    @OptionGroup var keys: KeyFlags
    @Option(name: .long, help: "Parallel worker connections.")
    var jobs = 2
    @Flag(name: .long, help: "Drop and recreate the target database if it has user tables.")
    var clean = false
    @Flag(name: .long, help: "Do not restore ownership (ALTER ... OWNER TO): objects belong to the restoring user. For clusters without the source's roles.")
    var noOwner = false
    @Flag(name: .long, help: "Do not restore privileges (GRANT/REVOKE).")
    var noPrivileges = false
    @OptionGroup var output: OutputFlags

    func validate() throws {
        try validateJobs(jobs)
    }

    func run() throws {
        try runReportingErrors {
            Console.shared.quiet = output.quiet
            let repo = try repository.open(create: false)
            var options = RestoreOptions(reference: backup, targetConninfo: target, keys: keys.keyOptions)
            options.jobs = jobs
            options.clean = clean
            options.noOwner = noOwner
            options.noPrivileges = noPrivileges
            options.showProgress = !output.quiet && !output.json
            let result = try RestoreEngine(options: options, repository: repo).run()
            if output.json {
                Console.shared.output(try JSONText.encode(RestoreReport(result)))
            } else {
                let phases = result.phases.map { "\($0.name) \(Format.seconds($0.seconds))s" }.joined(separator: ", ")
                Console.shared.output("""
                    restore of \(result.backupId) into \(result.database) complete: \(result.tables) tables, \(result.rows) rows
                    restore duration (RTO): \(Format.seconds(result.duration)) s (\(phases))
                    """)
            }
        }
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

    init(_ result: RestoreResult) {
        backupId = result.backupId
        database = result.database
        tables = result.tables
        rows = result.rows
        durationSeconds = result.duration
        phases = result.phases.map { Phase(name: $0.name, seconds: $0.seconds) }
    }
}

struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decrypt one object of a backup to stdout, still compressed: the manual escape hatch.",
        discussion: """
            The output is the object's codec stream: zstd for .zst names (zstd -dc), gzip for .gz (gunzip -c), \
            plain text for backups taken with --compress none. It stops with a non-zero exit at the first segment \
            that fails authentication, so use set -o pipefail. Example: set -o pipefail; drkit cat latest \
            schema/pre-data.sql.zst.enc --repo /backups --key-file k | zstd -dc | psql newdb. \
            Object names are listed in docs/FORMAT.md; `ls <repo>/<backup-id>/data` shows them for a local repository.
            """)

    @Argument(help: "Backup id (or unique prefix), or `latest`.")
    var backup: String
    @Argument(help: "Object name inside the backup, e.g. data/00000.0000.copy.zst.enc")
    var object: String
    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var keys: KeyFlags

    func run() throws {
        try runReportingErrors {
            let repo = try repository.open(create: false)
            try ObjectCat.run(repository: repo, reference: backup, object: object, keys: keys.keyOptions,
                              output: FileDescriptorSink(fd: STDOUT_FILENO))
        }
    }
}
