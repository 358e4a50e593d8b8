import Foundation
import Archive
import ObjectStorage
import PostgresClient

public struct RestoreOptions: Sendable {
    public var reference: String
    public var targetConninfo: String
    public var jobs: Int = 2
    public var clean = false
    public var showProgress = true
    public var keys: KeyOptions

    public init(reference: String, targetConninfo: String, keys: KeyOptions) {
        self.reference = reference
        self.targetConninfo = targetConninfo
        self.keys = keys
    }
}

public struct RestoreResult: Sendable {
    public var backupId: String
    public var database: String
    public var tables: Int
    public var rows: Int64
    public var plainBytes: Int64
    /// Wall time of the whole restore: the RTO figure.
    public var duration: Double
    public var phases: [(name: String, seconds: Double)]
}

/// Restores a backup into a new (or empty) database:
/// pre-data DDL → parallel COPY FROM → sequences → post-data (indexes and constraints in parallel,
/// the rest in order) → materialized view refresh → ANALYZE.
/// Every object is authenticated, hash-checked and row-counted before its COPY commits.
public final class RestoreEngine {
    let options: RestoreOptions
    let repository: Repository
    let console: Console

    public init(options: RestoreOptions, repository: Repository, console: Console = .shared) {
        self.options = options
        self.repository = repository
        self.console = console
    }

    static func sessionSettings(encoding: String) -> String {
        """
        SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;
        SET client_encoding = \(Connection.quoteLiteral(encoding)); SET DateStyle = ISO; SET IntervalStyle = postgres;
        SET synchronous_commit = off; SET check_function_bodies = false; SET client_min_messages = warning;
        SET maintenance_work_mem = '256MB'
        """
    }

    public func run() throws -> RestoreResult {
        let start = Date()
        var phases: [(String, Double)] = []
        var phaseStart = start
        func endPhase(_ name: String) {
            let now = Date()
            phases.append((name, now.timeIntervalSince(phaseStart)))
            phaseStart = now
        }

        let file = try repository.resolve(options.reference)
        let backupId = file.summary.backupId
        let dataKey = try options.keys.dataKey(for: file)
        let manifest: BackupManifest
        do { manifest = try file.open(dataKey: dataKey) } catch { throw DRKitError.wrap(error, "manifest of \(backupId)") }
        let preData = try readScript(manifest.preData, backupId: backupId, dataKey: dataKey)
        let postData = try readScript(manifest.postData, backupId: backupId, dataKey: dataKey)

        var target = try RestoreTarget(conninfo: options.targetConninfo)
        try target.prepare(source: manifest.source, encoding: manifest.source.encoding, clean: options.clean)
        console.note("restore \(backupId) into \(target.redacted): \(manifest.tables.count) tables, \(manifest.allObjects.count - 2) data objects, \(options.jobs) jobs")
        endPhase("prepare")
        do {
            let settings = RestoreEngine.sessionSettings(encoding: manifest.source.encoding)
            let main = try connect(target, settings: settings)
            do { try main.execute(preData.sql) } catch { throw DRKitError.wrap(error, "pre-data DDL") }
            endPhase("pre-data")

            try loadData(manifest, backupId: backupId, dataKey: dataKey, target: target, settings: settings)
            endPhase("data")

            for sequence in manifest.sequences {
                let name = Connection.quoteLiteral(Connection.qualified(sequence.schema, sequence.name))
                do {
                    try main.execute("SELECT pg_catalog.setval(\(name), \(sequence.lastValue), \(sequence.isCalled))")
                } catch { throw DRKitError.wrap(error, "setting sequence \(sequence.schema).\(sequence.name)") }
            }
            try runPostData(postData, analyzing: manifest.tables, main: main, target: target, settings: settings)
            endPhase("post-data+analyze")

            try refreshMaterializedViews(manifest.materializedViews.filter(\.populated), on: main)
            endPhase("refresh")
        } catch {
            let dropped = target.discard()
            let wrapped = DRKitError.wrap(error)
            let suffix = dropped ? " (the partially restored database \(target.database) was dropped)" : ""
            throw DRKitError(wrapped.code, "restore of \(backupId) failed: \(wrapped.message)\(suffix)")
        }
        return RestoreResult(backupId: backupId, database: target.database, tables: manifest.tables.count,
                             rows: manifest.tables.reduce(0) { $0 + $1.rows },
                             plainBytes: manifest.tables.reduce(0) { $0 + $1.plainBytes },
                             duration: Date().timeIntervalSince(start), phases: phases)
    }

    private func connect(_ target: RestoreTarget, settings: String) throws -> Connection {
        do {
            let connection = try Connection(conninfo: target.conninfo)
            try connection.execute(settings)
            return connection
        } catch {
            throw DRKitError.wrap(error, "cannot connect to \(target.redacted)")
        }
    }

    private func readScript(_ record: ObjectRecord, backupId: String, dataKey: [UInt8]?) throws -> DDLScript {
        let buffer = BufferSink()
        _ = try ObjectReaderPipeline.read(record, backupId: backupId, repository: repository, dataKey: dataKey,
                                         isCopyData: false, destination: buffer)
        return DDLScript(String(decoding: buffer.bytes, as: UTF8.self))
    }

    private func loadData(_ manifest: BackupManifest, backupId: String, dataKey: [UInt8]?, target: RestoreTarget, settings: String) throws {
        let work = manifest.tables.flatMap { table in table.objects.map { (table, $0) } }
            .sorted { $0.1.size > $1.1.size }
        let progress = ProgressReporter(label: "restore \(backupId)", totalBytes: work.reduce(0) { $0 + $1.1.plainBytes },
                                        totalObjects: work.count)
        if options.showProgress { progress.start(console: console) }
        defer { progress.stop(console: console) }
        let queue = WorkQueue(work)
        try queue.run(workers: options.jobs, setUp: { _ in try self.connect(target, settings: settings) }) { connection, item in
            let (table, record) = item
            let relation = Connection.qualified(table.schema, table.name)
            let columns = table.columns.isEmpty ? "" : " (" + table.columns.map(Connection.quoteIdentifier).joined(separator: ", ") + ")"
            let copy: CopyInWriter
            do { copy = try connection.copyIn("COPY \(relation)\(columns) FROM STDIN") } catch {
                throw DRKitError.wrap(error, "loading \(table.schema).\(table.name)")
            }
            let sink = CopyInSink(copy: copy, progress: progress, stop: { queue.failed })
            do {
                _ = try ObjectReaderPipeline.read(record, backupId: backupId, repository: self.repository,
                                                  dataKey: dataKey, destination: sink)
                try sink.flushProgress()
                try copy.finish()
                progress.add(bytes: 0, rows: record.rows)
                progress.objectDone(estimate: record.plainBytes)
            } catch {
                copy.abort(reason: "drkit: \(error)")
                throw DRKitError.wrap(error, "loading \(table.schema).\(table.name)")
            }
        }
    }

    private enum PostDataTask {
        case ddl(DDLScript.Entry)
        case analyze(TableRecord)
    }

    /// Indexes and constraints build side by side, and ANALYZE of each table shares the same workers
    /// (it waits on a table's index builds, not on the others); the rest of post-data then runs in order.
    private func runPostData(_ script: DDLScript, analyzing tables: [TableRecord], main: Connection,
                             target: RestoreTarget, settings: String) throws {
        let parallel = script.entries.filter { DDLScript.parallelTypes.contains($0.type) }.map(PostDataTask.ddl)
            + tables.map(PostDataTask.analyze)
        let serial = script.entries.filter { !DDLScript.parallelTypes.contains($0.type) }
        // Deadlocks between concurrent ALTER TABLEs (partitioned tables) are retried one by one.
        let retry = Locked([DDLScript.Entry]())
        let queue = WorkQueue(parallel)
        try queue.run(workers: options.jobs, setUp: { _ -> Connection in
            let connection = try self.connect(target, settings: settings)
            try connection.execute(script.preamble)
            return connection
        }) { connection, task in
            switch task {
            case .ddl(let entry):
                do { try connection.execute(entry.sql) } catch let e as PostgresError where e.sqlState == PostgresError.deadlockDetected {
                    retry.withLock { $0.append(entry) }
                } catch {
                    throw DRKitError.wrap(error, "post-data DDL")
                }
            case .analyze(let table):
                do { try connection.execute("ANALYZE \(Connection.qualified(table.schema, table.name))") } catch {
                    throw DRKitError.wrap(error, "ANALYZE \(table.schema).\(table.name)")
                }
            }
        }
        do {
            try main.execute(script.preamble)
            for entry in retry.current + serial { try main.execute(entry.sql) }
        } catch {
            throw DRKitError.wrap(error, "post-data DDL")
        }
    }

    /// Refreshes views in dependency order by retrying those that read a view not yet populated.
    private func refreshMaterializedViews(_ views: [MaterializedViewRecord], on connection: Connection) throws {
        var pending = views
        while !pending.isEmpty {
            var failed: [MaterializedViewRecord] = []
            var lastError: Error?
            for view in pending {
                do { try connection.execute("REFRESH MATERIALIZED VIEW \(Connection.qualified(view.schema, view.name))") } catch {
                    failed.append(view)
                    lastError = error
                }
            }
            if failed.count == pending.count, let lastError {
                throw DRKitError.wrap(lastError, "refreshing materialized view \(failed[0].schema).\(failed[0].name)")
            }
            pending = failed
        }
    }
}

/// Feeds decompressed COPY text to the server and counts it for the progress line.
final class CopyInSink: ByteSink {
    private let copy: CopyInWriter
    private let progress: ProgressReporter
    private let stop: () -> Bool
    private var pendingBytes: Int64 = 0

    init(copy: CopyInWriter, progress: ProgressReporter, stop: @escaping () -> Bool) {
        self.copy = copy
        self.progress = progress
        self.stop = stop
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if stop() { throw DRKitError(.tool, "stopped: another worker failed") }
        try copy.write(bytes)
        pendingBytes += Int64(bytes.count)
        if pendingBytes >= 4 << 20 { try flushProgress() }
    }

    func finish() throws {}

    func flushProgress() throws {
        progress.add(bytes: pendingBytes, rows: 0)
        pendingBytes = 0
    }
}
