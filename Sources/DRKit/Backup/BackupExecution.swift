import Foundation
import Archive
import Common
import PostgresClient

/// The objects a backup wrote, as the tasks finished.
struct WrittenObjects {
    var ddl: [String: ObjectRecord] = [:]
    /// Per table index: (chunk index, record), in completion order.
    var chunks: [Int: [(Int, ObjectRecord)]] = [:]
    /// Packed large object contents, in OID order.
    var largeObjects: [ObjectRecord] = []
    /// What the backup could not do but does not fail for, one line each.
    var warnings: [String] = []
}

/// Phase 3 of a backup: runs the planned tasks by kind. pg_dump's DDL sections and its table of
/// contents run on threads of their own (pg_dump mostly waits on the server); table chunks and large
/// objects run on `jobs` worker connections that joined the snapshot. The first failure stops both.
struct BackupExecution: Sendable {
    let repository: Repository
    let backupId: String
    let codec: Codec
    let dataKey: [UInt8]?
    let conninfo: String
    /// The exported snapshot every worker joins.
    let snapshotId: String
    let tables: [CatalogTable]
    /// pg_dump then writes the large objects' definitions (lo_create, owner, ACL, comment) into pre-data.
    let hasLargeObjects: Bool
    /// A partial backup's patterns, given to pg_dump as they are.
    let selection: SelectionRecord
    /// A globals-only backup: its DDL sections are empty and pg_dump does not run.
    let globalsOnly: Bool
    let progress: ProgressReporter

    func run(_ tasks: [BackupTask], jobs: Int, pgDump: PgDump) throws -> WrittenObjects {
        let results = Locked(WrittenObjects())
        let queue = WorkQueue(tasks.filter { if case .ddl = $0 { return false } else { return true } })
        let sections = tasks.compactMap { if case .ddl(let section) = $0 { return section } else { return nil } }
        let ddlDone = DispatchGroup()
        let ddlError = Locked<Error?>(nil)
        // Each pg_dump on its own thread, side by side: they mostly wait on catalog queries, which is
        // what a schema of thousands of small tables is made of.
        for name in sections + (globalsOnly ? [] : ["toc"]) {
            ddlDone.enter()
            Thread {
                defer { ddlDone.leave() }
                guard !queue.failed else { return }
                do {
                    let record = name == "toc" ? try dumpTableOfContents(pgDump: pgDump) : try dumpSection(name, pgDump: pgDump)
                    results.withLock { $0.ddl[name] = record }
                } catch let unreadable as DumpTOC.Malformed {
                    // Only partial restores need it: the backup stands without it, and says so.
                    results.withLock { $0.warnings.append("pg_dump's table of contents could not be read (\(unreadable)); this backup restores whole only") }
                } catch {
                    ddlError.withLock { if $0 == nil { $0 = error } }
                }
            }.start()
        }
        defer { ddlDone.wait() }
        try queue.run(workers: jobs, setUp: { _ in try BackupSnapshot.joinWorker(snapshotId: snapshotId, conninfo: conninfo) }, body: { worker, task in
            switch task {
            case .tableChunk(let chunk):
                let record = try copyChunk(chunk, on: worker, stop: { queue.failed })
                results.withLock { $0.chunks[chunk.tableIndex, default: []].append((chunk.chunkIndex, record)) }
            case .largeObjects(let index, let entries):
                let record = try dumpLargeObjects(index, entries, on: worker, stop: { queue.failed })
                results.withLock { $0.largeObjects.append(record) }
            case .ddl:
                break
            }
        })
        results.withLock { $0.largeObjects.sort { $0.name < $1.name } }
        ddlDone.wait()
        if let error = ddlError.current { throw error }
        return results.current
    }

    /// The globals object, `globals.json` (+ codec and `.enc`).
    static func writeGlobals(_ globals: ClusterGlobals, repository: Repository, backupId: String, codec: Codec, dataKey: [UInt8]?) throws -> ObjectRecord {
        do {
            return try ObjectWriterPipeline(repository: repository, backupId: backupId,
                                            name: ObjectWriterPipeline.objectName("globals.json", codec: codec, encrypted: dataKey != nil),
                                            codec: codec, dataKey: dataKey)
                .writeAll { pipeline in try globals.encoded.withUnsafeBytes { try pipeline.write($0) } }
        } catch {
            throw DRKitError.wrap(error, "writing the globals")
        }
    }

    private func writer(_ base: String) throws -> ObjectWriterPipeline {
        try ObjectWriterPipeline(repository: repository, backupId: backupId,
                                 name: ObjectWriterPipeline.objectName(base, codec: codec, encrypted: dataKey != nil),
                                 codec: codec, dataKey: dataKey)
    }

    private func dumpSection(_ section: String, pgDump: PgDump) throws -> ObjectRecord {
        // --schema-only leaves large objects out; pre-data alone, with -b, has their definitions but no contents.
        let scope = hasLargeObjects && section == "pre-data" ? "-b" : "--schema-only"
        let record = try writer("schema/\(section).sql").writeAll { pipeline in
            guard !globalsOnly else { return }
            try pgDump.run(arguments: [scope, "--section=\(section)", "--snapshot=\(snapshotId)"] + selection.pgDumpArguments, conninfo: conninfo) {
                try pipeline.write($0)
            }
        }
        progress.objectDone(estimate: 0)
        return record
    }

    /// pg_dump's table of contents of the same DDL, with its dependency graph (`schema/toc.json`):
    /// what lets a partial restore take exactly what some tables need.
    private func dumpTableOfContents(pgDump: PgDump) throws -> ObjectRecord {
        var archive: [UInt8] = []
        try pgDump.run(arguments: ["--format=custom", "--schema-only", "--snapshot=\(snapshotId)"] + selection.pgDumpArguments, conninfo: conninfo) {
            archive.appendBytes($0)
        }
        let toc = try DumpTOC.parse(archive)
        let record = try writer("schema/toc.json").writeAll { pipeline in try JSONEncoder().encode(toc).withUnsafeBytes { try pipeline.write($0) } }
        progress.objectDone(estimate: 0)
        return record
    }

    private func dumpLargeObjects(_ index: Int, _ entries: [LargeObjects.Entry], on worker: Connection, stop: @Sendable () -> Bool) throws -> ObjectRecord {
        var record: ObjectRecord
        do {
            record = try writer(String(format: "largeobjects/%05d.lo", index)).writeAll { pipeline in
                try LargeObjects.dump(entries, on: worker) { oid, offset, bytes in
                    if stop() { throw DRKitError(.tool, "stopped: another worker failed") }
                    try LargeObjects.header(oid: oid, offset: offset, length: bytes.count).withUnsafeBytes { try pipeline.write($0) }
                    try bytes.withUnsafeBytes { try pipeline.write($0) }
                    progress.add(bytes: Int64(bytes.count), rows: 0)
                }
            }
        } catch {
            throw DRKitError.wrap(error, "copying large objects \(entries.first.map { String($0.oid) } ?? "")...")
        }
        record.rows = Int64(entries.count)
        progress.objectDone(estimate: entries.reduce(0) { $0 + $1.size })
        return record
    }

    private func copyChunk(_ chunk: TableChunk, on worker: Connection, stop: @Sendable () -> Bool) throws -> ObjectRecord {
        let table = tables[chunk.tableIndex]
        let pipeline = try writer(String(format: "data/%05d.%04d.copy", chunk.tableIndex, chunk.chunkIndex))
        do {
            var pendingBytes: Int64 = 0, pendingRows: Int64 = 0
            try worker.copyOut(BackupPlanner.copyStatement(table, chunk)) { row in
                if stop() { throw DRKitError(.tool, "stopped: another worker failed") }
                try pipeline.write(row: row)
                pendingBytes += Int64(row.count)
                pendingRows += 1
                if pendingRows == 4096 {
                    progress.add(bytes: pendingBytes, rows: pendingRows)
                    (pendingBytes, pendingRows) = (0, 0)
                }
            }
            progress.add(bytes: pendingBytes, rows: pendingRows)
            let record = try pipeline.finish()
            progress.objectDone(estimate: chunk.estimatedBytes)
            return record
        } catch {
            pipeline.abort()
            throw DRKitError.wrap(error, "copying \(table.schema).\(table.name)")
        }
    }
}
