import Foundation
import PostgresClient

/// What the backup carries, read in the snapshot. Pure data; `BackupPlanner` turns it into work.
struct CatalogTable {
    var schema: String
    var name: String
    var kind: String
    var columns: [String]
    var heapBytes: Int64
}

struct CatalogSequence {
    var schema: String
    var name: String
}

struct Catalog {
    var tables: [CatalogTable] = []
    var sequences: [CatalogSequence] = []
    var materializedViews: [(schema: String, name: String, populated: Bool)] = []
    var largeObjects: Int64 = 0
    var blockSize: Int64 = 8192

    /// The cluster's system identifier, or NULL when the user may not read pg_control_system().
    static let systemIdentifierExpression = """
        CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
             THEN (SELECT system_identifier::text FROM pg_control_system()) END
        """

    /// Relations in user schemas that are not members of an extension (the extension recreates those).
    static let userRelationFilter = """
        n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        """

    static func read(_ connection: Connection) throws -> Catalog {
        var catalog = Catalog()
        catalog.blockSize = Int64(try connection.query("SELECT current_setting('block_size')").scalar ?? "8192") ?? 8192
        let relations = try connection.query("""
            SELECT n.nspname, c.relname, c.relkind::text, c.relispartition::text, c.relpersistence::text,
                   c.relispopulated::text, pg_relation_size(c.oid)::text,
                   COALESCE((SELECT json_agg(a.attname ORDER BY a.attnum)::text FROM pg_attribute a
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '[]')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'S', 'm') AND \(userRelationFilter)
            ORDER BY n.nspname, c.relname
            """)
        for row in relations.rows {
            let schema = row[0]!, name = row[1]!
            switch row[2] {
            case "r":
                let columns = (try? JSONDecoder().decode([String].self, from: Data(row[7]!.utf8))) ?? []
                let kind = row[3] == "true" ? "partition" : (row[4] == "u" ? "unlogged table" : "table")
                catalog.tables.append(CatalogTable(schema: schema, name: name, kind: kind, columns: columns,
                                                   heapBytes: Int64(row[6] ?? "0") ?? 0))
            case "S":
                catalog.sequences.append(CatalogSequence(schema: schema, name: name))
            case "m":
                catalog.materializedViews.append((schema, name, row[5] == "true"))
            default:
                break
            }
        }
        catalog.largeObjects = Int64(try connection.query("SELECT count(*) FROM pg_largeobject_metadata").scalar ?? "0") ?? 0
        return catalog
    }
}

/// One unit of backup work: a DDL section, or a block range of one table.
enum BackupTask {
    case ddl(section: String)
    case tableChunk(TableChunk)
}

struct TableChunk {
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
    static func plan(_ catalog: Catalog, splitBytes: Int64, tidRangeScans: Bool) -> [BackupTask] {
        var chunks: [TableChunk] = []
        let blocksPerChunk = max(1, splitBytes / catalog.blockSize)
        for (index, table) in catalog.tables.enumerated() {
            let blocks = (table.heapBytes + catalog.blockSize - 1) / catalog.blockSize
            guard tidRangeScans, blocks > blocksPerChunk else {
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
        // Largest first, so the last work to finish is small and both workers stay busy to the end.
        chunks.sort { $0.estimatedBytes > $1.estimatedBytes }
        return [.ddl(section: "pre-data"), .ddl(section: "post-data")] + chunks.map(BackupTask.tableChunk)
    }

    static func copyStatement(_ table: CatalogTable, _ chunk: TableChunk) -> String {
        let relation = Connection.qualified(table.schema, table.name)
        let columns = table.columns.map(Connection.quoteIdentifier).joined(separator: ", ")
        if chunk.startBlock == nil {
            return table.columns.isEmpty ? "COPY \(relation) TO STDOUT" : "COPY \(relation) (\(columns)) TO STDOUT"
        }
        var condition = "ctid >= '(\(chunk.startBlock!),0)'::tid"
        if let end = chunk.endBlock { condition += " AND ctid < '(\(end),0)'::tid" }
        return "COPY (SELECT \(columns) FROM ONLY \(relation) WHERE \(condition)) TO STDOUT"
    }
}
