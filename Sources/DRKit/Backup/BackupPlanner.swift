import PostgresClient
import Foundation

/// One unit of a backup's data work: one block range of one table, a pack of small tables, or one
/// batch of large objects. (The schema's pg_dumps run beside them, outside the plan.)
enum BackupTask: Sendable {
    case tableChunk(TableChunk)
    /// Whole small tables (catalog indexes) copied one after another into one shared object.
    case tablePack(index: Int, tables: [Int], estimatedBytes: Int64)
    case largeObjects(index: Int, [LargeObjects.Entry])

    var estimatedBytes: Int64 {
        switch self {
        case .tableChunk(let chunk): return chunk.estimatedBytes
        case .tablePack(_, _, let bytes): return bytes
        case .largeObjects(_, let entries): return entries.reduce(0) { $0 + $1.size }
        }
    }

    /// The tables (catalog indexes) the task reads.
    var tableIndexes: [Int] {
        switch self {
        case .tableChunk(let chunk): return [chunk.tableIndex]
        case .tablePack(_, let tables, _): return tables
        case .largeObjects: return []
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
    /// A pack holds at most this many tables, so that a restore loading it in one transaction takes a
    /// bounded number of locks (the server's lock table is shared: max_locks_per_transaction × connections).
    static let tablesPerPack = 250
    static let bytesPerPack: Int64 = 32 << 20

    /// Splits tables larger than `splitBytes` into block ranges (TID range scans make these cheap on
    /// PostgreSQL 14+), so that both workers and restore can share one large table. Tables smaller than
    /// `packBelowBytes` go into packs, in catalog order: a few objects instead of one per small table.
    static func plan(_ catalog: Catalog, splitBytes: Int64, tidRangeScans: Bool, packBelowBytes: Int64 = 0,
                     largeObjects: [LargeObjects.Entry] = []) -> [BackupTask] {
        var chunks: [TableChunk] = []
        var packs: [BackupTask] = []
        var packing: [Int] = []
        var packingBytes: Int64 = 0
        func closePack() {
            if packing.count == 1 {
                chunks.append(TableChunk(tableIndex: packing[0], chunkIndex: 0, startBlock: nil, endBlock: nil, estimatedBytes: packingBytes))
            } else if !packing.isEmpty {
                packs.append(.tablePack(index: packs.count, tables: packing, estimatedBytes: packingBytes))
            }
            (packing, packingBytes) = ([], 0)
        }
        for (index, table) in catalog.tables.enumerated() {
            // Sizes count TOAST: a table of small rows and large values is neither packed nor left whole.
            if table.dataBytes < packBelowBytes {
                if packing.count == tablesPerPack || packingBytes + table.dataBytes > bytesPerPack { closePack() }
                packing.append(index)
                packingBytes += table.dataBytes
                continue
            }
            let blocks = (table.heapBytes + catalog.blockSize - 1) / catalog.blockSize
            // Chunks by weight, but never less than a block each.
            let chunkCount = min(blocks, (table.dataBytes + splitBytes - 1) / max(1, splitBytes))
            guard tidRangeScans, chunkCount > 1, table.extensionFilter == nil else {
                chunks.append(TableChunk(tableIndex: index, chunkIndex: 0, startBlock: nil, endBlock: nil, estimatedBytes: table.dataBytes))
                continue
            }
            // Equal chunks of at most splitBytes: no small tail chunk that loads last and holds back the
            // table's index builds at restore, and an even share for each worker.
            let blocksPerEqualChunk = (blocks + chunkCount - 1) / chunkCount
            var start: Int64 = 0
            var chunkIndex = 0
            while start < blocks {
                let end = start + blocksPerEqualChunk
                let last = end >= blocks
                chunks.append(TableChunk(tableIndex: index, chunkIndex: chunkIndex, startBlock: start,
                                         endBlock: last ? nil : end,
                                         estimatedBytes: table.dataBytes * (min(end, blocks) - start) / max(1, blocks)))
                start = end
                chunkIndex += 1
            }
        }
        closePack()
        let batches = LargeObjects.batches(largeObjects, targetBytes: splitBytes).enumerated().map { BackupTask.largeObjects(index: $0, $1) }
        // Largest first, so the last work to finish is small and both workers stay busy to the end.
        let data = (chunks.map(BackupTask.tableChunk) + packs + batches).sorted { $0.estimatedBytes > $1.estimatedBytes }
        return data
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
