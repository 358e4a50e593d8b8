import PostgresClient
import Foundation

/// The planner statistics a backup of PostgreSQL 18+ carries (`schema/statistics.sql`, pg_dump's
/// `--statistics-only` script): one entry per table and index, each a `pg_restore_relation_stats` call
/// and a `pg_restore_attribute_stats` call per column. A restore onto 18+ loads them once every table's
/// data and indexes are in (an index build rewrites its table's page and row counts), instead of
/// running ANALYZE, which reads every table again.
struct RestoreStatistics: Sendable {
    struct Entry: Sendable, Equatable {
        /// "schema.name" of the table or index, unquoted, as manifests name tables.
        var relation: String
        var sql: String
        /// The source had counted its rows (`reltuples` is -1 for a relation never analyzed or vacuumed).
        var counted: Bool
    }

    var entries: [Entry]

    /// Entries to a transaction: each locks its relation, and thousands of tables must stay well inside
    /// the server's lock table (64 per connection by default).
    static let entriesPerTransaction = 50

    init(script: String) {
        entries = DDLScript(script).entries.compactMap { entry in
            guard entry.type == "STATISTICS DATA", let key = entry.key else { return nil }
            let sql = DDLScript.statements(of: entry)
            return Entry(relation: "\(key.schema).\(key.name)", sql: sql, counted: !sql.contains("'reltuples', '-1'::real"))
        }
    }

    /// The tables whose statistics the backup carries: they need no ANALYZE. A table the source never
    /// analyzed has none to carry, and is analyzed on the target as before.
    func covered(_ tables: some Sequence<String>) -> Set<String> {
        let counted = Set(entries.filter(\.counted).map(\.relation))
        return Set(tables.filter { counted.contains($0) })
    }
}
