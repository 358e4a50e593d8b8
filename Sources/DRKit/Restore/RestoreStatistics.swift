import Archive
import PostgresClient
import Foundation
import Common

/// The planner statistics a backup of PostgreSQL 18+ carries (`schema/statistics.sql`, pg_dump's
/// `--statistics-only` script): one entry per table and index, each a `pg_restore_relation_stats` call
/// and a `pg_restore_attribute_stats` call per column. A restore onto 18+ loads them once every table's
/// data and indexes are in (an index build rewrites its table's page and row counts), instead of
/// running ANALYZE, which reads every table again.
///
/// The script is read twice, entry by entry, never whole: first to learn which relations it covers
/// (`survey`), then to load it (`forEachEntry`). Memory holds one entry: 10,000 tables' script held
/// whole and parsed took 185 MiB.
struct RestoreStatistics: Sendable {
    struct Entry: Sendable, Equatable {
        /// "schema.name" of the table or index, unquoted, as manifests name tables.
        var relation: String
        var sql: String
        /// The source had counted its rows (`reltuples` is -1 for a relation never analyzed or vacuumed).
        var counted: Bool
    }

    let record: ObjectRecord
    /// The relations whose entry carries counted rows.
    let counted: Set<String>

    /// Entries to a transaction: each locks its relation, and thousands of tables must stay well inside
    /// the server's lock table (64 per connection by default).
    static let entriesPerTransaction = 50

    static func survey(_ record: ObjectRecord, objects: BackupObjects) throws -> RestoreStatistics {
        var counted = Set<String>()
        _ = try objects.read(record, isCopyData: false, destination: StatisticsEntryReader { if $0.counted { counted.insert($0.relation) } })
        return RestoreStatistics(record: record, counted: counted)
    }

    /// Every entry, in the script's order (the last one once the object's hash was checked).
    func forEachEntry(objects: BackupObjects, _ body: @escaping (Entry) throws -> Void) throws {
        _ = try objects.read(record, isCopyData: false, destination: StatisticsEntryReader(entry: body))
    }

    /// The tables whose statistics the backup carries: they need no ANALYZE. A table the source never
    /// analyzed has none to carry, and is analyzed on the target as before.
    func covered(_ tables: some Sequence<String>) -> Set<String> {
        Set(tables.filter { counted.contains($0) })
    }
}

/// Splits pg_dump's statistics script into entries as its bytes arrive. An entry begins at its header
/// (`--` then `-- Statistics for Name: ...; Type: STATISTICS DATA; ...`); its SQL is its lines without
/// comments, blank lines or psql meta-commands (`\restrict`), which the server must not see; lines
/// inside a quoted value (a most-common value's text can hold any of them) are kept as they are.
final class StatisticsEntryReader: ByteSink {
    private let entry: (RestoreStatistics.Entry) throws -> Void
    private var buffer = LineBuffer()
    private var script = DumpScriptLines()
    private var current: (relation: String, lines: [String])?

    init(entry: @escaping (RestoreStatistics.Entry) throws -> Void) {
        self.entry = entry
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        for line in buffer.lines(completedBy: bytes) { try self.line(line.dropLast()) }
    }

    func finish() throws {
        if let rest = buffer.rest() { try line(rest[...]) }
        try flush()
    }

    private func line(_ bytes: ArraySlice<UInt8>) throws {
        let kind = script.next(bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        if kind == .entryHeader, text.hasPrefix("-- Statistics for Name: ") {
            try flush()
            if let key = DDLEntryKey(header: Substring(text)), key.type == "STATISTICS DATA" { current = ("\(key.schema).\(key.name)", []) }
            return
        }
        let continuesQuote = kind == .quoted
        guard DDLScript.isStatementLine(text, continuesQuote: continuesQuote), continuesQuote || !text.hasPrefix("\\") else { return }
        current?.lines.append(text)
    }

    private func flush() throws {
        guard let (relation, lines) = current else { return }
        current = nil
        let sql = lines.joined(separator: "\n")
        try entry(RestoreStatistics.Entry(relation: relation, sql: sql, counted: !sql.contains("'reltuples', '-1'::real")))
    }
}
