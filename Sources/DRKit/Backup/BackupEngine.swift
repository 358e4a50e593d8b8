import Foundation
import Archive
import Common
import ObjectStorage
import PostgresClient

public struct BackupOptions: Sendable {
    public var conninfo: String
    public var jobs: Int = 2
    public var codec: Codec = .default
    /// Tables larger than this (heap bytes) are split into several objects.
    public var splitBytes: Int64 = 64 << 20
    /// nil: no encryption (the CLI only allows that with an explicit `--no-encrypt`).
    public var key: KeySource?
    public var showProgress = true

    public init(conninfo: String, key: KeySource?) {
        self.conninfo = conninfo
        self.key = key
    }
}

public struct BackupResult: Sendable {
    public var manifest: BackupManifest
    public var summary: BackupSummary
    public var duration: Double
}

/// Consistent logical backup of one database into a repository.
///
/// One coordinator transaction (REPEATABLE READ) exports its snapshot; pg_dump (DDL) and every worker
/// connection (data, `COPY ... TO STDOUT`) import it, so schema, rows, counts and sequence values all
/// describe the same instant. The manifest is written last: until then the backup does not exist.
public final class BackupEngine {
    let options: BackupOptions
    let repository: Repository
    let console: Console

    public init(options: BackupOptions, repository: Repository, console: Console = .shared) {
        self.options = options
        self.repository = repository
        self.console = console
    }

    static let sessionSettings = """
        SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;
        SET extra_float_digits = 3; SET DateStyle = ISO; SET IntervalStyle = postgres; SET bytea_output = hex;
        SELECT set_config('client_encoding', current_setting('server_encoding'), false)
        """

    public func run() throws -> BackupResult {
        let startedAt = Date()
        let backupId = BackupId.make(startedAt: startedAt)
        let redacted = (try? ConnectionOptions(options.conninfo).redacted) ?? "the database"

        let coordinator: Connection
        do { coordinator = try Connection(conninfo: options.conninfo) } catch {
            throw DRKitError.wrap(error, "cannot connect to \(redacted)")
        }
        let snapshot: (id: String, time: Date, source: SourceRecord, catalog: Catalog)
        do {
            try coordinator.execute(BackupEngine.sessionSettings)
            try coordinator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            let info = try coordinator.query("""
                SELECT pg_export_snapshot(), to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                       current_database(), current_setting('server_version'), current_setting('server_version_num'),
                       current_setting('server_encoding'), \(Catalog.systemIdentifierExpression)
                """)
            let row = info.rows[0]
            let source = SourceRecord(database: row[2]!, serverVersion: row[3]!, serverVersionNum: Int(row[4]!) ?? 0,
                                      systemIdentifier: row[6], encoding: row[5]!)
            let catalog = try Catalog.read(coordinator)
            snapshot = (row[0]!, Timestamps.parse(row[1]!) ?? startedAt, source, catalog)
        } catch {
            throw DRKitError.wrap(error, "reading the catalog of \(redacted)")
        }
        let catalog = snapshot.catalog
        if catalog.largeObjects > 0 {
            throw DRKitError(.refused, "database \(snapshot.source.database) has \(catalog.largeObjects) large object(s) (pg_largeobject), which drkit cannot carry yet; refusing rather than dropping them")
        }
        if !catalog.tables.isEmpty {
            // Keep every table from being dropped or altered while it is read, as pg_dump does.
            let names = catalog.tables.map { Connection.qualified($0.schema, $0.name) }
            for batch in stride(from: 0, to: names.count, by: 500) {
                let list = names[batch..<min(batch + 500, names.count)].joined(separator: ", ")
                do { try coordinator.execute("LOCK TABLE ONLY \(list) IN ACCESS SHARE MODE") } catch {
                    throw DRKitError.wrap(error, "locking tables for the backup")
                }
            }
        }
        let sequences: [SequenceRecord]
        do {
            sequences = try catalog.sequences.map { sequence in
                let r = try coordinator.query("SELECT last_value::text, is_called::text FROM \(Connection.qualified(sequence.schema, sequence.name))")
                return SequenceRecord(schema: sequence.schema, name: sequence.name, lastValue: r.rows[0][0]!, isCalled: r.rows[0][1] == "true")
            }
        } catch {
            throw DRKitError.wrap(error, "reading sequence values")
        }

        let encryption: (envelope: KeyEnvelope, dataKey: [UInt8])?
        do { encryption = try options.key.map { try KeyEnvelope.create(backupId: backupId, source: $0) } } catch {
            throw DRKitError.wrap(error, "preparing encryption")
        }
        let envelope = encryption?.envelope
        let dataKey = encryption?.dataKey
        let pgDump = try PgDump.locate(serverMajor: snapshot.source.serverVersionNum / 10000)
        let tasks = BackupPlanner.plan(catalog, splitBytes: options.splitBytes,
                                       tidRangeScans: snapshot.source.serverVersionNum >= 140000)
        console.note("backup \(backupId): \(catalog.tables.count) tables, \(catalog.sequences.count) sequences, \(tasks.count - 2) data objects from \(redacted), \(options.jobs) jobs")

        let progress = ProgressReporter(label: "backup \(backupId)",
                                        totalBytes: catalog.tables.reduce(0) { $0 + $1.heapBytes },
                                        totalObjects: tasks.count)
        if options.showProgress { progress.start(console: console) }
        let results = Locked((ddl: [String: ObjectRecord](), chunks: [Int: [(Int, ObjectRecord)]]()))
        let encrypted = dataKey != nil
        let queue = WorkQueue(tasks.filter { if case .tableChunk = $0 { return true } else { return false } })
        // pg_dump runs on its own thread beside the data workers: it mostly waits on its child process.
        let ddlDone = DispatchGroup()
        let ddlError = Locked<Error?>(nil)
        ddlDone.enter()
        Thread {
            defer { ddlDone.leave() }
            for case .ddl(let section) in tasks where !queue.failed {
                let name = ObjectWriterPipeline.objectName("schema/\(section).sql", codec: self.options.codec, encrypted: encrypted)
                do {
                    let pipeline = try ObjectWriterPipeline(repository: self.repository, backupId: backupId, name: name,
                                                            codec: self.options.codec, dataKey: dataKey)
                    do {
                        try pgDump.run(arguments: ["--schema-only", "--section=\(section)", "--snapshot=\(snapshot.id)"],
                                       conninfo: self.options.conninfo) { try pipeline.write($0) }
                        let record = try pipeline.finish()
                        results.withLock { $0.ddl[section] = record }
                        progress.objectDone(estimate: 0)
                    } catch {
                        pipeline.abort()
                        throw error
                    }
                } catch {
                    ddlError.withLock { $0 = error }
                    return
                }
            }
        }.start()
        do {
            defer { progress.stop(console: console) }
            try queue.run(workers: options.jobs, setUp: { _ -> Connection in
                let worker = try Connection(conninfo: self.options.conninfo)
                try worker.execute(BackupEngine.sessionSettings)
                try worker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                try worker.execute("SET TRANSACTION SNAPSHOT \(Connection.quoteLiteral(snapshot.id))")
                return worker
            }, body: { worker, task in
                switch task {
                case .ddl:
                    break  // on the DDL thread
                case .tableChunk(let chunk):
                    let table = catalog.tables[chunk.tableIndex]
                    let base = String(format: "data/%05d.%04d.copy", chunk.tableIndex, chunk.chunkIndex)
                    let pipeline = try ObjectWriterPipeline(repository: self.repository, backupId: backupId,
                                                            name: ObjectWriterPipeline.objectName(base, codec: self.options.codec, encrypted: encrypted),
                                                            codec: self.options.codec, dataKey: dataKey)
                    do {
                        var pendingBytes: Int64 = 0, pendingRows: Int64 = 0
                        try worker.copyOut(BackupPlanner.copyStatement(table, chunk)) { row in
                            if queue.failed { throw DRKitError(.tool, "stopped: another worker failed") }
                            try pipeline.write(row: row)
                            pendingBytes += Int64(row.count)
                            pendingRows += 1
                            if pendingRows == 4096 {
                                progress.add(bytes: pendingBytes, rows: pendingRows)
                                pendingBytes = 0
                                pendingRows = 0
                            }
                        }
                        progress.add(bytes: pendingBytes, rows: pendingRows)
                        let record = try pipeline.finish()
                        results.withLock { $0.chunks[chunk.tableIndex, default: []].append((chunk.chunkIndex, record)) }
                        progress.objectDone(estimate: chunk.estimatedBytes)
                    } catch {
                        pipeline.abort()
                        throw DRKitError.wrap(error, "copying \(table.schema).\(table.name)")
                    }
                }
            })
            ddlDone.wait()
            if let error = ddlError.current { throw error }
        } catch {
            ddlDone.wait()
            discardPartialBackup(backupId)
            throw DRKitError.wrap(error, "backup failed")
        }
        _ = try? coordinator.execute("COMMIT")

        let gathered = results.current
        guard let preData = gathered.ddl["pre-data"], let postData = gathered.ddl["post-data"] else {
            discardPartialBackup(backupId)
            throw DRKitError(.tool, "backup failed: DDL sections were not written")
        }
        let tables = catalog.tables.enumerated().map { index, table -> TableRecord in
            let objects = (gathered.chunks[index] ?? []).sorted { $0.0 < $1.0 }.map(\.1)
            return TableRecord(schema: table.schema, name: table.name, kind: table.kind, columns: table.columns,
                               rows: objects.reduce(0) { $0 + $1.rows }, plainBytes: objects.reduce(0) { $0 + $1.plainBytes },
                               objects: objects)
        }
        let finishedAt = Date()
        let manifest = BackupManifest(
            backupId: backupId, toolVersion: DRKitVersion.current, source: snapshot.source, snapshotTime: snapshot.time,
            startedAt: startedAt, finishedAt: finishedAt,
            compression: .init(algorithm: options.codec.algorithm.rawValue, level: options.codec.level), preData: preData, postData: postData,
            tables: tables, sequences: sequences,
            materializedViews: catalog.materializedViews.map { MaterializedViewRecord(schema: $0.schema, name: $0.name, populated: $0.populated) })
        let objects = manifest.allObjects
        let summary = BackupSummary(
            backupId: backupId, toolVersion: DRKitVersion.current, database: snapshot.source.database,
            serverVersion: snapshot.source.serverVersion, snapshotTime: snapshot.time, startedAt: startedAt,
            finishedAt: finishedAt, tableCount: tables.count, objectCount: objects.count,
            storedBytes: objects.reduce(0) { $0 + $1.size }, encrypted: envelope != nil,
            keyFingerprint: envelope?.kek.fingerprint)
        do {
            // The commit point: only now does the backup exist for list, verify and restore.
            try repository.writeManifest(try ManifestFile.make(manifest, summary: summary, envelope: envelope, dataKey: dataKey))
        } catch {
            discardPartialBackup(backupId)
            throw DRKitError.wrap(error, "writing the manifest")
        }
        return BackupResult(manifest: manifest, summary: summary, duration: finishedAt.timeIntervalSince(startedAt))
    }

    /// Best effort: a failed backup leaves no objects behind. Whatever remains (a crash) has no
    /// manifest, so it is never listed or restored.
    private func discardPartialBackup(_ backupId: String) {
        if let objects = try? repository.objects(of: backupId), !objects.isEmpty {
            try? repository.store.delete(keys: objects.map(\.key))
        }
    }
}
