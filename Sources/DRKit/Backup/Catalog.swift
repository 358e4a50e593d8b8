import PostgresClient
import Foundation

/// What the backup carries, read in the snapshot. Pure data; `BackupPlanner` turns it into work.
struct CatalogTable: Sendable {
    var schema: String
    var name: String
    var kind: String
    var columns: [String]
    /// The main fork: what a block range (`ctid`) splits.
    var heapBytes: Int64
    /// Out-of-line values (TOAST), read along with the rows: a table of 80 KiB can carry 150 MiB.
    var toastBytes: Int64 = 0
    /// An extension's configuration table (`pg_extension_config_dump`): the extension creates it, the
    /// backup carries the rows its filter selects (the rows the user added), as pg_dump does.
    var extensionFilter: String? = nil

    /// What the table's rows weigh: its main fork and its TOAST (`pg_table_size`), which decide packing
    /// and splitting.
    var dataBytes: Int64 { heapBytes + toastBytes }
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

    /// The columns a backup carries of relation `c`, in order, as a JSON array (generated columns are
    /// recomputed on restore and so left out).
    static let carriedColumnsExpression = """
        COALESCE((SELECT json_agg(a.attname ORDER BY a.attnum)::text FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '[]')
        """

    private static func columns(_ json: String?) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data((json ?? "[]").utf8))) ?? []
    }

    static func read(_ connection: Connection) throws -> Catalog {
        var catalog = Catalog()
        catalog.blockSize = Int64(try connection.query("SELECT current_setting('block_size')").scalar ?? "8192") ?? 8192
        let relations = try connection.query("""
            SELECT n.nspname, c.relname, c.relkind::text, c.relispartition::text, c.relpersistence::text,
                   c.relispopulated::text, pg_relation_size(c.oid)::text, \(carriedColumnsExpression),
                   (pg_table_size(c.oid) - pg_relation_size(c.oid))::text
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'S', 'm') AND \(userRelationFilter)
            ORDER BY n.nspname, c.relname
            """)
        for row in relations.rows {
            let schema = row[0]!, name = row[1]!
            switch row[2] {
            case "r":
                let kind = row[3] == "true" ? "partition" : (row[4] == "u" ? "unlogged table" : "table")
                catalog.tables.append(CatalogTable(schema: schema, name: name, kind: kind, columns: columns(row[7]),
                                                   heapBytes: Int64(row[6] ?? "0") ?? 0, toastBytes: max(0, Int64(row[8] ?? "0") ?? 0)))
            case "S":
                catalog.sequences.append(CatalogSequence(schema: schema, name: name))
            case "m":
                catalog.materializedViews.append((schema, name, row[5] == "true"))
            default:
                break
            }
        }
        // Extension configuration tables: created by CREATE EXTENSION, their user rows carried as data.
        for row in try connection.query("""
            SELECT n.nspname, c.relname, COALESCE(e.extcondition[cfg.position], ''), pg_relation_size(c.oid)::text,
                   \(carriedColumnsExpression), (pg_table_size(c.oid) - pg_relation_size(c.oid))::text
            FROM pg_extension e CROSS JOIN LATERAL unnest(e.extconfig) WITH ORDINALITY AS cfg(relid, position)
            JOIN pg_class c ON c.oid = cfg.relid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' ORDER BY 1, 2
            """).rows {
            catalog.tables.append(CatalogTable(schema: row[0]!, name: row[1]!, kind: "extension configuration table", columns: columns(row[4]),
                                               heapBytes: Int64(row[3] ?? "0") ?? 0, toastBytes: max(0, Int64(row[5] ?? "0") ?? 0),
                                               extensionFilter: row[2] ?? ""))
        }
        catalog.largeObjects = Int64(try connection.query("SELECT count(*) FROM pg_largeobject_metadata").scalar ?? "0") ?? 0
        return catalog
    }
}

/// One unit of backup work: a DDL section, or a block range of one table.
