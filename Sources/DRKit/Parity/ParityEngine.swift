import Archive
import PostgresClient
import Foundation
import Common

/// One side of a parity check.
public enum ParitySide: Sendable {
    case database(String)
    case backup(reference: String, repository: Repository, keys: KeyOptions)
}

public struct ParityOptions: Sendable {
    public var source: ParitySide
    public var target: ParitySide
    public var checksum = false
    /// Globs over `schema.table`; empty means every table.
    public var include: [String] = []
    public var exclude: [String] = []
    public var jobs = 2
    /// Compare only the source's tables: tables that exist on the target alone (created by a migration
    /// run after a restore) are not a mismatch.
    public var sourceTablesOnly = false

    public init(source: ParitySide, target: ParitySide) {
        self.source = source
        self.target = target
    }
}

public struct ParityRow: Codable, Sendable, Equatable {
    public var schema: String
    public var table: String
    public var sourceRows: Int64?
    public var targetRows: Int64?
    public var sourceChecksum: String?
    public var targetChecksum: String?
    public var match: Bool
}

public struct ParityReport: Codable, Sendable {
    public var match: Bool
    public var checksum: Bool
    public var source: String
    public var target: String
    public var tables: [ParityRow]
    public var mismatches: [ParityRow] { tables.filter { !$0.match } }

    /// `schema,table,source_rows,target_rows,match` (plus checksums with `--checksum`).
    public func csv() -> String {
        var header = ["schema", "table", "source_rows", "target_rows", "match"]
        if checksum { header += ["source_checksum", "target_checksum"] }
        var lines = [header.joined(separator: ",")]
        for row in tables {
            var fields = [row.schema, row.table, row.sourceRows.map(String.init) ?? "", row.targetRows.map(String.init) ?? "",
                          row.match ? "true" : "false"]
            if checksum { fields += [row.sourceChecksum ?? "", row.targetChecksum ?? ""] }
            lines.append(fields.map(CSV.field).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Exact row counts (and optionally content checksums) per table on both sides, each side read in
/// one snapshot so the counts describe one instant.
public final class ParityEngine: Sendable {
    let options: ParityOptions

    public init(options: ParityOptions) { self.options = options }

    struct Measure {
        var rows: Int64
        var checksum: String?
    }

    public func run() throws -> ParityReport {
        if options.checksum {
            for side in [options.source, options.target] {
                if case .backup = side { throw DRKitError(.usage, "--checksum needs a database on both sides (a manifest has row counts only)") }
            }
        }
        let source = try measure(options.source, label: "source")
        let target = try measure(options.target, label: "target")
        let compared = options.sourceTablesOnly ? Set(source.keys) : Set(source.keys).union(target.keys)
        let keys = compared.filter(selected).sorted {
            ($0.schema, $0.table) < ($1.schema, $1.table)
        }
        let rows = keys.map { key -> ParityRow in
            let s = source[key], t = target[key]
            let match = s != nil && t != nil && s!.rows == t!.rows && s!.checksum == t!.checksum
            return ParityRow(schema: key.schema, table: key.table, sourceRows: s?.rows, targetRows: t?.rows,
                             sourceChecksum: s?.checksum, targetChecksum: t?.checksum, match: match)
        }
        return ParityReport(match: rows.allSatisfy(\.match), checksum: options.checksum,
                            source: describe(options.source), target: describe(options.target), tables: rows)
    }

    struct TableKey: Hashable {
        var schema: String
        var table: String
    }

    func selected(_ key: TableKey) -> Bool {
        let name = "\(key.schema).\(key.table)"
        if !options.include.isEmpty && !options.include.contains(where: { Glob.matches($0, name) }) { return false }
        return !options.exclude.contains { Glob.matches($0, name) }
    }

    func describe(_ side: ParitySide) -> String {
        switch side {
        case .database(let conninfo): return (try? ConnectionOptions(conninfo).redacted) ?? "database"
        case .backup(let reference, let repository, _): return "backup \(reference) in \(repository.store.location)"
        }
    }

    private func measure(_ side: ParitySide, label: String) throws -> [TableKey: Measure] {
        switch side {
        case .backup(let reference, let repository, let keys):
            let manifest = try repository.openBackup(reference, keys: keys).manifest
            var out: [TableKey: Measure] = [:]
            for table in manifest.tables { out[TableKey(schema: table.schema, table: table.name)] = Measure(rows: table.rows) }
            if manifest.largeObjectCount > 0 && selected(ParityEngine.largeObjects) {
                out[ParityEngine.largeObjects] = Measure(rows: manifest.largeObjectCount)
            }
            return out
        case .database(let conninfo):
            return try countDatabase(conninfo, label: label)
        }
    }

    /// An order-independent checksum: the sum of each row's md5 (first 64 bits) as numeric, with the count.
    static func checksumQuery(_ relation: String) -> String {
        "SELECT count(*)::text, coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text FROM ONLY \(relation) t"
    }

    private func countDatabase(_ conninfo: String, label: String) throws -> [TableKey: Measure] {
        let redacted = (try? ConnectionOptions(conninfo).redacted) ?? label
        let coordinator: Connection
        let tables: [TableKey]
        let snapshot: String
        do {
            coordinator = try Connection(conninfo: conninfo)
            try coordinator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = try coordinator.query("SELECT pg_export_snapshot()").scalar ?? ""
            tables = try coordinator.query("""
                SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND \(Catalog.userRelationFilter)
                """).rows.map { TableKey(schema: $0[0]!, table: $0[1]!) }.filter(selected)
        } catch {
            throw DRKitError.wrap(error, "\(label) \(redacted)")
        }
        let results = Locked([TableKey: Measure]())
        let queue = WorkQueue(tables)
        do {
            try queue.run(workers: options.jobs, setUp: { _ -> Connection in
                let worker = try Connection(conninfo: conninfo)
                try worker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                try worker.execute("SET TRANSACTION SNAPSHOT \(Connection.quoteLiteral(snapshot))")
                return worker
            }) { worker, key in
                let relation = Connection.qualified(key.schema, key.table)
                let measure: Measure
                if self.options.checksum {
                    let row = try worker.query(ParityEngine.checksumQuery(relation)).rows[0]
                    measure = Measure(rows: Int64(row[0]!) ?? -1, checksum: row[1])
                } else {
                    measure = Measure(rows: Int64(try worker.query("SELECT count(*) FROM ONLY \(relation)").scalar ?? "-1") ?? -1)
                }
                results.withLock { $0[key] = measure }
            }
        } catch {
            throw DRKitError.wrap(error, "counting rows in \(label) \(redacted)")
        }
        var measures = results.current
        do {
            if let largeObjects = try measureLargeObjects(on: coordinator) { measures[ParityEngine.largeObjects] = largeObjects }
        } catch {
            throw DRKitError.wrap(error, "counting large objects in \(label) \(redacted)")
        }
        _ = try? coordinator.execute("COMMIT")
        return measures
    }

    /// Large objects compare as one row: how many, and with `--checksum` their OIDs, owners and contents.
    static let largeObjects = TableKey(schema: "pg_catalog", table: "pg_largeobject")

    private func measureLargeObjects(on connection: Connection) throws -> Measure? {
        guard selected(ParityEngine.largeObjects) else { return nil }
        let count = Int64(try connection.query("SELECT count(*) FROM pg_largeobject_metadata").scalar ?? "0") ?? 0
        guard count > 0 else { return nil }
        guard options.checksum else { return Measure(rows: count) }
        let checksum = try connection.query("""
            SELECT coalesce(sum(('x' || substr(md5(m.oid::text || ':' || pg_get_userbyid(m.lomowner) || ':' || md5(lo_get(m.oid))), 1, 16))::bit(64)::bigint::numeric), 0)::text
            FROM pg_largeobject_metadata m
            """).scalar
        return Measure(rows: count, checksum: checksum)
    }
}
