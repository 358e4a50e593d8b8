import Foundation
import Archive
import Common
import PostgresClient

/// The objects a backup wrote, as the tasks finished.
struct WrittenObjects {
    var ddl: [String: ObjectRecord] = [:]
    /// Per table index: (chunk index, record), in completion order.
    var chunks: [Int: [(Int, ObjectRecord)]] = [:]
}

/// Phase 3 of a backup: runs the planned tasks by kind. pg_dump's DDL sections run on their own
/// thread (pg_dump mostly waits on its child process); table chunks run on `jobs` worker
/// connections that joined the snapshot. The first failure stops both.
struct BackupExecution: Sendable {
    let repository: Repository
    let backupId: String
    let codec: Codec
    let dataKey: [UInt8]?
    let conninfo: String
    /// The exported snapshot every worker joins.
    let snapshotId: String
    let tables: [CatalogTable]
    let progress: ProgressReporter

    func run(_ tasks: [BackupTask], jobs: Int, pgDump: PgDump) throws -> WrittenObjects {
        let results = Locked(WrittenObjects())
        let queue = WorkQueue(tasks.filter { if case .tableChunk = $0 { return true } else { return false } })
        let sections = tasks.compactMap { if case .ddl(let section) = $0 { return section } else { return nil } }
        let ddlDone = DispatchGroup()
        let ddlError = Locked<Error?>(nil)
        ddlDone.enter()
        Thread {
            defer { ddlDone.leave() }
            do {
                for section in sections where !queue.failed {
                    let record = try dumpSection(section, pgDump: pgDump)
                    results.withLock { $0.ddl[section] = record }
                }
            } catch {
                ddlError.withLock { $0 = error }
            }
        }.start()
        defer { ddlDone.wait() }
        try queue.run(workers: jobs, setUp: { _ in try BackupSnapshot.joinWorker(snapshotId: snapshotId, conninfo: conninfo) }, body: { worker, task in
            guard case .tableChunk(let chunk) = task else { return }
            let record = try copyChunk(chunk, on: worker, stop: { queue.failed })
            results.withLock { $0.chunks[chunk.tableIndex, default: []].append((chunk.chunkIndex, record)) }
        })
        ddlDone.wait()
        if let error = ddlError.current { throw error }
        return results.current
    }

    private func writer(_ base: String) throws -> ObjectWriterPipeline {
        try ObjectWriterPipeline(repository: repository, backupId: backupId,
                                 name: ObjectWriterPipeline.objectName(base, codec: codec, encrypted: dataKey != nil),
                                 codec: codec, dataKey: dataKey)
    }

    private func dumpSection(_ section: String, pgDump: PgDump) throws -> ObjectRecord {
        let pipeline = try writer("schema/\(section).sql")
        do {
            try pgDump.run(arguments: ["--schema-only", "--section=\(section)", "--snapshot=\(snapshotId)"], conninfo: conninfo) {
                try pipeline.write($0)
            }
            let record = try pipeline.finish()
            progress.objectDone(estimate: 0)
            return record
        } catch {
            pipeline.abort()
            throw error
        }
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
