import Archive
import PostgresClient
import Foundation
import Common

/// The objects a backup wrote, as the tasks finished.
struct WrittenObjects {
    var ddl: [String: ObjectRecord] = [:]
    /// Per table index: (chunk index, record), in completion order.
    var chunks: [Int: [(Int, ObjectRecord)]] = [:]
    /// Packs of small tables, with their slices' catalog indexes, in pack order.
    var packs: [(index: Int, tables: [Int], record: PackRecord)] = []
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
    /// The server's shared lock table (`BackupSnapshot.lockSlots`).
    let lockSlots: Int
    /// The coordinator holds every table's lock (`BackupSnapshot.locksEveryTable`); else each worker locks
    /// the tables of the object it copies, and checks they are still the snapshot's.
    let coordinatorLocksTables: Bool
    /// The source is PostgreSQL 18 or later: its planner statistics are dumped too (`schema/statistics.sql`),
    /// so that a restore onto 18+ loads them instead of running ANALYZE.
    let withStatistics: Bool
    let progress: ProgressReporter
    /// Asked before each object: throws once the backup's lease was found broken.
    let leaseHeld: @Sendable () throws -> Void

    /// The schema objects a backup writes beside its data: pre-data, post-data and the table of contents.
    static func schemaObjectCount(globalsOnly: Bool, withStatistics: Bool) -> Int { globalsOnly ? 2 : withStatistics ? 4 : 3 }

    func run(_ tasks: [BackupTask], jobs: Int, pgDump: PgDump) throws -> WrittenObjects {
        let results = Locked(WrittenObjects())
        let queue = WorkQueue(tasks)
        let schema = Locked<(script: [UInt8]?, toc: DumpTOC?, error: Error?)>((nil, nil, nil))
        let ddlDone = DispatchGroup()
        // Two pg_dumps on threads of their own, side by side with the data (they mostly wait on catalog
        // queries, which is what a schema of thousands of small tables is made of): the DDL of both
        // sections as one script, and the table of contents that says where post-data begins in it.
        let dumps: [@Sendable () throws -> Void] = globalsOnly ? [] : [
            { let script = try dumpSchemaScript(pgDump: pgDump); schema.withLock { $0.script = script } },
            {
                do {
                    let (toc, record) = try dumpTableOfContents(pgDump: pgDump)
                    schema.withLock { $0.toc = toc }
                    results.withLock { $0.ddl["toc"] = record }
                } catch let unreadable as DumpTOC.Malformed {
                    // Only partial restores need it: the backup stands without it, and says so.
                    results.withLock { $0.warnings.append("pg_dump's table of contents could not be read (\(unreadable)); this backup restores whole only") }
                }
            },
        ] + (withStatistics ? [{
            let record = try dumpStatistics(pgDump: pgDump)
            results.withLock { $0.ddl["statistics"] = record }
        }] : [])
        // Each pg_dump locks every table, as the coordinator may: side by side they hold a lock per table
        // each at once, which a schema of thousands of tables cannot fit in the server's lock table.
        let sideBySide = tables.count * (dumps.count + (coordinatorLocksTables ? 1 : 0)) + BackupSnapshot.lockMargin <= lockSlots
        for group in sideBySide ? dumps.map({ [$0] }) : [dumps] {
            ddlDone.enter()
            Thread {
                defer { ddlDone.leave() }
                for dump in group {
                    guard !queue.failed else { return }
                    do { try dump() } catch {
                        schema.withLock { if $0.error == nil { $0.error = error } }
                        return
                    }
                }
            }.start()
        }
        defer { ddlDone.wait() }
        try queue.run(workers: jobs, setUp: { _ in try BackupSnapshot.joinWorker(snapshotId: snapshotId, conninfo: conninfo) }, body: { worker, task in
            try leaseHeld()
            if !coordinatorLocksTables, !task.tableIndexes.isEmpty {
                try BackupSnapshot.lockForCopy(task.tableIndexes.map { tables[$0] }, on: worker)
            }
            switch task {
            case .tableChunk(let chunk):
                let record = try copyChunk(chunk, on: worker, stop: { queue.failed })
                results.withLock { $0.chunks[chunk.tableIndex, default: []].append((chunk.chunkIndex, record)) }
            case .tablePack(let index, let tableIndexes, _):
                let pack = try copyPack(index, tableIndexes, on: worker, stop: { queue.failed })
                results.withLock { $0.packs.append((index, tableIndexes, pack)) }
            case .largeObjects(let index, let entries):
                let record = try dumpLargeObjects(index, entries, on: worker, stop: { queue.failed })
                results.withLock { $0.largeObjects.append(record) }
            }
            try BackupSnapshot.renewWorker(worker, snapshotId: snapshotId)
        })
        results.withLock {
            $0.largeObjects.sort { $0.name < $1.name }
            $0.packs.sort { $0.index < $1.index }
        }
        ddlDone.wait()
        let dumped = schema.current
        if let error = dumped.error { throw error }
        let sections = try writeSchemaSections(script: dumped.script ?? [], toc: dumped.toc, pgDump: pgDump)
        results.withLock { $0.ddl.merge(sections) { $1 } }
        return results.current
    }

    /// pre-data and post-data, split from the one script where the table of contents says post-data
    /// begins. Without a readable table of contents, or when the script has no header for its first
    /// post-data entry (a name pg_dump printed differently), each section is dumped on its own instead.
    private func writeSchemaSections(script: [UInt8], toc: DumpTOC?, pgDump: PgDump) throws -> [String: ObjectRecord] {
        let firstPostData = toc?.entries.first { $0.section == DumpTOC.postDataSection }
            .map { DDLEntryKey(type: $0.type, schema: $0.schema ?? "-", name: $0.name) }
        guard toc != nil || globalsOnly, let split = DDLScript.splitSections(script, firstPostData: firstPostData) else {
            return ["pre-data": try dumpSection("pre-data", pgDump: pgDump), "post-data": try dumpSection("post-data", pgDump: pgDump)]
        }
        var records: [String: ObjectRecord] = [:]
        for (name, bytes) in [("pre-data", try withLargeObjectDefinitions(split.preData)), ("post-data", split.postData)] {
            records[name] = try writer("schema/\(name).sql").writeAll { pipeline in try bytes.withUnsafeBytes { try pipeline.write($0) } }
            progress.objectDone(estimate: 0)
        }
        return records
    }

    /// The DDL of both sections in one run: `--schema-only`, or with large objects `-b` and the two
    /// sections (which adds their definitions, lo_create, owners, ACLs and comments, and no contents).
    private func dumpSchemaScript(pgDump: PgDump) throws -> [UInt8] {
        let scope = hasLargeObjects ? ["-b", "--section=pre-data", "--section=post-data"] : ["--schema-only"]
        var script: [UInt8] = []
        try pgDump.run(arguments: scope + ["--snapshot=\(snapshotId)"] + selection.pgDumpArguments, conninfo: conninfo) { script.appendBytes($0) }
        return script
    }

    /// pg_dump 17 and later put large objects' definitions in the data section (with their contents,
    /// which drkit stores itself), so its pre-data creates none: drkit writes them, read in the same
    /// snapshot, at the end of pre-data. Detected by their absence, whatever pg_dump's version.
    private func withLargeObjectDefinitions(_ preData: [UInt8]) throws -> [UInt8] {
        guard hasLargeObjects, preData.firstRange(of: Array("; Type: BLOB;".utf8)) == nil else { return preData }
        let connection = try BackupSnapshot.joinWorker(snapshotId: snapshotId, conninfo: conninfo)
        return preData + (try LargeObjects.definitions(connection))
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
            let arguments = [scope, "--section=\(section)", "--snapshot=\(snapshotId)"] + selection.pgDumpArguments
            guard section == "pre-data" && hasLargeObjects else {
                return try pgDump.run(arguments: arguments, conninfo: conninfo) { try pipeline.write($0) }
            }
            var preData: [UInt8] = []
            try pgDump.run(arguments: arguments, conninfo: conninfo) { preData.appendBytes($0) }
            try withLargeObjectDefinitions(preData).withUnsafeBytes { try pipeline.write($0) }
        }
        progress.objectDone(estimate: 0)
        return record
    }

    /// pg_dump's table of contents of the same DDL, with its dependency graph (`schema/toc.json`):
    /// what lets a partial restore take exactly what some tables need.
    private func dumpTableOfContents(pgDump: PgDump) throws -> (DumpTOC, ObjectRecord) {
        var archive: [UInt8] = []
        try pgDump.run(arguments: ["--format=custom", "--schema-only", "--snapshot=\(snapshotId)"] + selection.pgDumpArguments, conninfo: conninfo) {
            archive.appendBytes($0)
        }
        var toc = try DumpTOC.parse(archive)
        toc.entries.removeAll { $0.type == "EVENT TRIGGER" && $0.name.hasPrefix(SchemaCapture.triggerPrefix) }
        let record = try writer("schema/toc.json").writeAll { pipeline in try JSONEncoder().encode(toc).withUnsafeBytes { try pipeline.write($0) } }
        progress.objectDone(estimate: 0)
        return (toc, record)
    }

    /// The planner statistics pg_dump 18+ writes as `pg_restore_relation_stats` / `pg_restore_attribute_stats`
    /// calls, one entry per table and index (`schema/statistics.sql`), read in the backup's snapshot.
    private func dumpStatistics(pgDump: PgDump) throws -> ObjectRecord {
        let record = try writer("schema/statistics.sql").writeAll { pipeline in
            try pgDump.run(arguments: ["--statistics-only", "--snapshot=\(snapshotId)"] + selection.pgDumpArguments, conninfo: conninfo) {
                try pipeline.write($0)
            }
        }
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
            _ = try copy(BackupPlanner.copyStatement(table, chunk), on: worker, into: pipeline, stop: stop)
            let record = try pipeline.finish()
            progress.objectDone(estimate: chunk.estimatedBytes)
            return record
        } catch {
            pipeline.abort()
            throw DRKitError.wrap(error, "copying \(table.schema).\(table.name)")
        }
    }

    /// Small tables one after another into one object, each one slice of its plain stream.
    private func copyPack(_ index: Int, _ tableIndexes: [Int], on worker: Connection, stop: @Sendable () -> Bool) throws -> PackRecord {
        let pipeline = try writer(String(format: "data/pack-%05d.copy", index))
        var slices: [PackSlice] = []
        do {
            for tableIndex in tableIndexes {
                let table = tables[tableIndex]
                let whole = TableChunk(tableIndex: tableIndex, chunkIndex: 0, startBlock: nil, endBlock: nil, estimatedBytes: table.heapBytes)
                do {
                    let (bytes, rows) = try copy(BackupPlanner.copyStatement(table, whole), on: worker, into: pipeline, stop: stop)
                    slices.append(PackSlice(schema: table.schema, name: table.name, plainBytes: bytes, rows: rows))
                } catch {
                    throw DRKitError.wrap(error, "copying \(table.schema).\(table.name)")
                }
            }
            let pack = PackRecord(object: try pipeline.finish(), slices: slices)
            progress.objectDone(estimate: tableIndexes.reduce(0) { $0 + tables[$1].heapBytes })
            return pack
        } catch {
            pipeline.abort()
            throw error
        }
    }

    /// One COPY TO STDOUT into the pipeline: the bytes and rows it wrote.
    private func copy(_ statement: String, on worker: Connection, into pipeline: ObjectWriterPipeline,
                      stop: @Sendable () -> Bool) throws -> (bytes: Int64, rows: Int64) {
        var pendingBytes: Int64 = 0, pendingRows: Int64 = 0
        var bytes: Int64 = 0, rows: Int64 = 0
        try worker.copyOut(statement) { row in
            if stop() { throw DRKitError(.tool, "stopped: another worker failed") }
            try pipeline.write(row: row)
            pendingBytes += Int64(row.count)
            pendingRows += 1
            if pendingRows == 4096 {
                progress.add(bytes: pendingBytes, rows: pendingRows)
                (bytes, rows) = (bytes + pendingBytes, rows + pendingRows)
                (pendingBytes, pendingRows) = (0, 0)
            }
        }
        progress.add(bytes: pendingBytes, rows: pendingRows)
        return (bytes + pendingBytes, rows + pendingRows)
    }
}
