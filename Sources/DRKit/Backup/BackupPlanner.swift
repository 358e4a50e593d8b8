import Foundation
import PostgresClient

/// One unit of backup work: a pg_dump DDL section, one block range of one table, or one batch of
/// large objects.
enum BackupTask: Sendable {
    case ddl(section: String)
    case tableChunk(TableChunk)
    case largeObjects(index: Int, [LargeObjects.Entry])

    var estimatedBytes: Int64 {
        switch self {
        case .ddl: return 0
        case .tableChunk(let chunk): return chunk.estimatedBytes
        case .largeObjects(_, let entries): return entries.reduce(0) { $0 + $1.size }
        }
    }
}

struct TableChunk: Sendable {
    var tableIndex: Int
    var chunkIndex: Int
    /// Block range [start, end); `end == nil` means to the end of the table. Both nil: the whole table.
    var startBlock: Int64?
    var endBlock: Int64?
    var estimatedBytes: Int64
}

enum BackupPlanner {
    /// Splits tables larger than `splitBytes` into block ranges (TID range scans make these cheap on
    /// PostgreSQL 14+), so that both workers and restore can share one large table.
    static func plan(_ catalog: Catalog, splitBytes: Int64, tidRangeScans: Bool, largeObjects: [LargeObjects.Entry] = []) -> [BackupTask] {
        var chunks: [TableChunk] = []
        let blocksPerChunk = max(1, splitBytes / catalog.blockSize)
        for (index, table) in catalog.tables.enumerated() {
            let blocks = (table.heapBytes + catalog.blockSize - 1) / catalog.blockSize
            guard tidRangeScans, blocks > blocksPerChunk, table.extensionFilter == nil else {
                chunks.append(TableChunk(tableIndex: index, chunkIndex: 0, startBlock: nil, endBlock: nil, estimatedBytes: table.heapBytes))
                continue
            }
            var start: Int64 = 0
            var chunkIndex = 0
            while start < blocks {
                let end = start + blocksPerChunk
                let last = end >= blocks
                chunks.append(TableChunk(tableIndex: index, chunkIndex: chunkIndex, startBlock: start,
                                         endBlock: last ? nil : end,
                                         estimatedBytes: (min(end, blocks) - start) * catalog.blockSize))
                start = end
                chunkIndex += 1
            }
        }
        let batches = LargeObjects.batches(largeObjects, targetBytes: splitBytes).enumerated().map { BackupTask.largeObjects(index: $0, $1) }
        // Largest first, so the last work to finish is small and both workers stay busy to the end.
        let data = (chunks.map(BackupTask.tableChunk) + batches).sorted { $0.estimatedBytes > $1.estimatedBytes }
        return [.ddl(section: "pre-data"), .ddl(section: "post-data")] + data
    }

    static func copyStatement(_ table: CatalogTable, _ chunk: TableChunk) -> String {
        let relation = Connection.qualified(table.schema, table.name)
        let columns = table.columns.map(Connection.quoteIdentifier).joined(separator: ", ")
        if let filter = table.extensionFilter, !filter.isEmpty {
            return "COPY (SELECT \(table.columns.isEmpty ? "*" : columns) FROM ONLY \(relation) \(filter)) TO STDOUT"
        }
        if chunk.startBlock == nil {
            return table.columns.isEmpty ? "COPY \(relation) TO STDOUT" : "COPY \(relation) (\(columns)) TO STDOUT"
        }
        var condition = "ctid >= '(\(chunk.startBlock!),0)'::tid"
        if let end = chunk.endBlock { condition += " AND ctid < '(\(end),0)'::tid" }
        return "COPY (SELECT \(columns) FROM ONLY \(relation) WHERE \(condition)) TO STDOUT"
    }
}
