import Archive
import ArgumentParser
import Common
import DRKit
import Foundation

struct Stream: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Archive a database's committed changes continuously, for point-in-time restore (`restore --to-time`).",
        discussion: """
            A long-running command (foreground, for systemd or Kubernetes; SIGTERM or SIGINT stops it cleanly). \
            It creates (or reuses) the logical replication slot and publication drkit_<database> (FOR ALL TABLES, \
            publish_via_partition_root; a superuser with REPLICATION, wal_level = logical), and writes the committed \
            transactions to REPO/stream/<lineage>/segments/ as change segments: written once, compressed and encrypted \
            like backups, each naming the hash of the one before it. A position is confirmed to the server only after \
            the segment holding it is stored, so a crash or kill loses nothing; a restart resumes from the slot and \
            drops what is already stored. A new lineage starts with a base backup linked to it; --base-every takes more. \
            Tables without a primary key or replica identity are refused up front (their UPDATE and DELETE would fail \
            once published) unless named with --replica-identity-full. Schema changes: as a superuser on PostgreSQL 14+ \
            it creates event triggers (schema drkit_capture) that put each DDL command into the stream at its place, \
            and restores run it there; without them (--no-schema-capture, or no rights) a change makes the stream take \
            a new base, and restores to a time between the change and that base are refused. `drkit stream drop` \
            removes the slot, the publication and the event triggers (a stopped stream's slot keeps WAL on the \
            server). See docs/runbooks/point-in-time-recovery.md.
            """,
        subcommands: [StreamRun.self, StreamDrop.self],
        defaultSubcommand: StreamRun.self)
}

/// Set by SIGTERM/SIGINT; the stream's loop looks at it at least once a second.
nonisolated(unsafe) private var stopSignalled: sig_atomic_t = 0

struct StreamRun: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Stream changes into the repository until stopped (the default).")

    @Option(name: .long, help: ArgumentHelp("Source database: libpq conninfo or postgres:// URL (a superuser with REPLICATION).", valueName: "conninfo"))
    var db: String
    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var keys: KeyFlags
    @OptionGroup var recipientFlags: RecipientFlags
    @OptionGroup var signing: SigningFlags
    @Flag(name: .long, help: "Store the change archive unencrypted.")
    var noEncrypt = false
    @Option(name: .long, help: ArgumentHelp("Write a segment at least this often while changes arrive (with a unit: 10s, 1m).", valueName: "duration"))
    var flushInterval = "10s"
    @Option(name: .long, help: ArgumentHelp("Also take a linked base backup this often (7d, 24h); by default only when the lineage has none.", valueName: "duration"))
    var baseEvery: String?
    @Option(name: .long, help: ArgumentHelp("Publish this table (schema.table) though it has no primary key, setting REPLICA IDENTITY FULL on it (repeatable).", valueName: "table"))
    var replicaIdentityFull: [String] = []
    @Flag(name: .long, help: "Do not create drkit's event triggers that put DDL into the stream (schema changes then take a new base, and the window before it cannot be restored to).")
    var noSchemaCapture = false
    @Option(name: .long, help: ArgumentHelp("Compression: zstd[:1-19], gzip[:1-9] or none (default \(Codec.default)).", valueName: "codec[:level]"))
    var compress: String?
    @OptionGroup var lock: ObjectLockFlags
    @OptionGroup var metrics: MetricsFlags
    @OptionGroup var output: OutputFlags

    func validate() throws {
        guard let interval = Durations.parse(flushInterval), interval >= 1 else { throw ValidationError("--flush-interval takes a duration of 1s or more with a unit (10s, 1m)") }
        _ = interval
        if let baseEvery { guard let every = Durations.parse(baseEvery), every >= 60 else { throw ValidationError("--base-every takes a duration of 1m or more with a unit (7d, 24h)") } }
        if let compress { do { _ = try Codec.parse(compress) } catch { throw ValidationError("--compress: \(error)") } }
    }

    func run() throws {
        try runReportingErrors {
            Console.shared.quiet = output.quiet
            let recipients = try recipientFlags.recipients()
            let key = try keys.encryptionKey(noEncrypt: noEncrypt, what: "the change archive", recipients: recipients)
            let repo = try repository.open(create: true).locking(try lock.lock())
            var options = StreamOptions(conninfo: db, key: key)
            options.recipients = recipients
            options.signingKey = try signing.load()
            options.flushInterval = Durations.parse(flushInterval)!
            options.baseEvery = baseEvery.flatMap(Durations.parse)
            options.replicaIdentityFull = replicaIdentityFull
            options.captureSchemaChanges = !noSchemaCapture
            options.codec = try compress.map(Codec.parse) ?? .default
            options.metrics = metrics.publisher
            options.showProgress = !output.quiet
            signal(SIGTERM) { _ in stopSignalled = 1 }
            signal(SIGINT) { _ in stopSignalled = 1 }
            signal(SIGPIPE, SIG_IGN)
            let report = try StreamRunner(options: options, repository: repo).run { stopSignalled != 0 }
            if output.json { Console.shared.output(try JSONText.encode(StreamRunReport(report))) }
        }
    }
}

struct StreamRunReport: Encodable {
    var lineage: String
    var segments: Int
    var transactions: Int
    var lastCommit: String?
    var baseBackups: [String]

    init(_ report: StreamReport) {
        lineage = report.lineage
        segments = report.segments
        transactions = report.transactions
        lastCommit = report.lastCommit.map(CommitTime.iso8601)
        baseBackups = report.basesTaken
    }
}

struct StreamDrop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop",
        abstract: "Remove the stream's replication slot, publication and schema-change event triggers from the source (the archive stays in the repository).")

    @Option(name: .long, help: ArgumentHelp("Source database: libpq conninfo or postgres:// URL.", valueName: "conninfo"))
    var db: String
    @OptionGroup var output: OutputFlags

    func run() throws {
        try runReportingErrors {
            let dropped = try StreamMaintenance.drop(conninfo: db)
            Console.shared.output(output.json ? try JSONText.encode(dropped) : dropped.isEmpty ? "nothing to drop: no drkit slot or publication for this database" : dropped.map { "dropped \($0)" }.joined(separator: "\n"))
        }
    }
}
