import Archive
import PostgresClient
import Foundation

/// One stored object of table rows: a table's own object, or a pack of small tables.
enum DataUnit: Equatable {
    case object(TableRecord, ObjectRecord)
    case pack(PackRecord)

    var record: ObjectRecord {
        switch self {
        case .object(_, let record): return record
        case .pack(let pack): return pack.object
        }
    }

    var isPack: Bool {
        if case .pack = self { return true }
        return false
    }

    /// The tables it holds rows of, as "schema.name".
    var tables: [String] {
        switch self {
        case .object(let table, _): return [table.qualifiedKey]
        case .pack(let pack): return pack.slices.map(\.qualifiedKey)
        }
    }
}

/// The restore's data and index pass, decided before any of it runs: which objects load in which
/// order, which post-data entries run beside the loading (and as how many statements), what follows
/// each pack on the worker that loaded it, and which tables get an ANALYZE of their own.
struct RestorePlan {
    /// The restored tables by "schema.name".
    var tables: [String: TableRecord]
    /// Every stored object of table rows.
    var units: [DataUnit]
    /// Per unit: higher loads first.
    var priority: [Int64]
    /// Post-data entries that may run in parallel (indexes and table constraints), in dump order.
    var parallelEntries: [DDLScript.Entry]
    /// The table each parallel entry acts on.
    var entryTables: [String?]
    /// Per parallel entry, its statements: two for an index-first key, else the entry itself.
    var steps: [[String]]
    /// The parallel entries the scheduler runs, by index; those of packed tables run with their pack.
    var scheduled: [Int]
    /// Per pack unit, the DDL scripts its worker runs right after loading it.
    var packDDL: [Int: [String]]
    /// Tables that get an ANALYZE task of their own (packed ones are analyzed with their pack).
    var analyze: [String]

    /// The schedule the workers share.
    func scheduler() -> RestoreScheduler {
        RestoreScheduler(
            dataObjects: units.enumerated().map { ($1.tables.filter { tables[$0] != nil }, $0, priority[$0]) },
            entries: scheduled.map { index in
                // A small table's ADD CONSTRAINT waits for all data, as its ACCESS EXCLUSIVE lock between
                // the loads measured slower for thousands of small tables; a large table's runs once its data is in.
                let entry = parallelEntries[index], table = entryTables[index]
                let early = entry.type == "INDEX" || RestorePlanner.isLarge(table.flatMap { tables[$0] })
                return (early ? table : nil, entry.type == "INDEX" || steps[index].count > 1)
            },
            analyze: analyze)
    }
}

/// Plans a restore's data and post-data work. Pure: a manifest and a script in, values out.
enum RestorePlanner {
    /// Tables from this size (plain COPY bytes) are "large": their primary key's or unique constraint's
    /// index is built first, their constraints run once their own data is in, and their foreign keys are
    /// checked side by side. Below it, a second statement or another connection costs more than it saves.
    static let largeTableBytes: Int64 = 16 << 20

    static func isLarge(_ table: TableRecord?) -> Bool { (table?.plainBytes ?? 0) >= largeTableBytes }

    /// Foreign keys of small tables run this many to a transaction: one round trip and one commit each.
    static let foreignKeysPerBatch = 100

    /// A pack's tables get their indexes, keys and ANALYZE this many tables to a transaction, which keeps
    /// its locks (about four per table) well inside the server's lock table with many `--jobs`.
    static let packedTablesPerDDLBatch = 50

    /// `statisticsLoaded`: tables whose planner statistics the backup carries and the restore loads
    /// afterwards (`RestoreStatistics`); they get no ANALYZE.
    static func plan(_ manifest: BackupManifest, postData: DDLScript, statisticsLoaded: Set<String> = []) -> RestorePlan {
        let tables = Dictionary(manifest.tables.map { ($0.qualifiedKey, $0) }, uniquingKeysWith: { a, _ in a })
        let units: [DataUnit] = manifest.tables.flatMap { table in table.objects.map { DataUnit.object(table, $0) } }
            + (manifest.packs ?? []).map(DataUnit.pack)
        let parallelEntries = postData.entries.filter { DDLScript.parallelTypes.contains($0.type) }
        let entryTables = parallelEntries.map(DDLScript.table(of:))
        var packOf: [String: Int] = [:]
        for (index, unit) in units.enumerated() where unit.isPack {
            for table in unit.tables where tables[table] != nil { packOf[table] = index }
        }
        return RestorePlan(
            tables: tables, units: units, priority: priorities(units),
            parallelEntries: parallelEntries, entryTables: entryTables,
            steps: zip(parallelEntries, entryTables).map { steps(for: $0, table: $1.flatMap { tables[$0] }) },
            scheduled: parallelEntries.indices.filter { entryTables[$0].flatMap { packOf[$0] } == nil },
            packDDL: packDDL(units: units, packOf: packOf, entries: parallelEntries, entryTables: entryTables, tables: tables,
                             analyzed: { !statisticsLoaded.contains($0) }),
            analyze: manifest.tables.map(\.qualifiedKey).filter { packOf[$0] == nil && !statisticsLoaded.contains($0) })
    }

    /// Primary keys and unique constraints of large plain tables build their index beside the table's
    /// other index builds; on a small table the second statement would cost more than it saves, and
    /// partitions keep pg_dump's statement (their indexes attach to the parent's).
    static func steps(for entry: DDLScript.Entry, table: TableRecord?) -> [String] {
        if let table, table.kind != "partition", isLarge(table), var steps = DDLScript.indexFirst(entry) {
            if !entry.placement.isEmpty { steps[0] = entry.placement + "\n" + steps[0] }
            return steps
        }
        return [entry.runnable]
    }

    /// Larger tables first, each table's objects together (its smallest last chunk too): a table's
    /// indexes and ANALYZE then overlap the loading of the tables after it, instead of one small chunk
    /// holding back the largest table's index builds to the end. Higher priority loads first.
    static func priorities(_ units: [DataUnit]) -> [Int64] {
        var tableBytes: [String: Int64] = [:]
        for unit in units { for table in unit.tables { tableBytes[table, default: 0] += unit.record.size } }
        let key = { (unit: DataUnit) -> (Int64, String, Int64) in
            (-(unit.tables.map { tableBytes[$0] ?? 0 }.max() ?? 0), unit.tables.first ?? "", -unit.record.size)
        }
        let loadOrder = units.indices.sorted { key(units[$0]) < key(units[$1]) }
        var priority = [Int64](repeating: 0, count: units.count)
        for (rank, index) in loadOrder.enumerated() { priority[index] = Int64(units.count - rank) }
        return priority
    }

    /// Per pack (by unit index), its tables' own post-data entries in dump order and then their
    /// ANALYZE, `packedTablesPerDDLBatch` tables to a script (one implicit transaction each).
    static func packDDL(units: [DataUnit], packOf: [String: Int], entries: [DDLScript.Entry], entryTables: [String?],
                        tables: [String: TableRecord], analyzed: (String) -> Bool = { _ in true }) -> [Int: [String]] {
        var statements: [String: [String]] = [:]
        for (entry, table) in zip(entries, entryTables) {
            if let table, packOf[table] != nil { statements[table, default: []].append(entry.runnable) }
        }
        var scripts: [Int: [String]] = [:]
        for (index, unit) in units.enumerated() where unit.isPack {
            for batch in unit.tables.filter({ packOf[$0] == index }).chunked(by: packedTablesPerDDLBatch) {
                let ddl = batch.flatMap { statements[$0] ?? [] }
                let analyze = batch.filter(analyzed).compactMap { tables[$0] }.map { "ANALYZE \(Connection.qualified($0.schema, $0.name));" }
                scripts[index, default: []].append((ddl + analyze).joined(separator: "\n"))
            }
        }
        return scripts
    }

    /// A run of foreign keys: small tables' keys in batches of `foreignKeysPerBatch` on one connection
    /// (they mostly wait on the lock of the table they reference, so connections side by side measured
    /// slower), large tables' checks one statement each, side by side.
    static func foreignKeys(_ entries: [DDLScript.Entry], tables: [String: TableRecord]) -> (smallBatches: [String], large: [DDLScript.Entry]) {
        let large = entries.map { isLarge(DDLScript.table(of: $0).flatMap { tables[$0] }) }
        let small = zip(entries, large).filter { !$0.1 }.map(\.0)
        return (small.chunked(by: foreignKeysPerBatch).map { $0.map(\.sql).joined(separator: "\n") }, zip(entries, large).filter(\.1).map(\.0))
    }
}
