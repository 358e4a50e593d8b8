import Archive
import Foundation
import Common

/// A partial backup carries what pg_dump selects under the same patterns, so that DDL and data can
/// never disagree: drkit does not reimplement pg_dump's pattern rules (quoting, wildcards, case,
/// search path), it asks pg_dump. One schema-only pre-data run, in the backup's snapshot, names
/// the tables, sequences and materialized views selected; one more per `--exclude-table-data`
/// pattern names the tables whose rows stay out.
enum PartialSelection {
    static func apply(_ selection: SelectionRecord, to snapshot: BackupSnapshot, pgDump: PgDump, conninfo: String) throws -> BackupSnapshot {
        let selected = try entries(selection.pgDumpArguments.filter { !$0.hasPrefix("--exclude-table-data=") }, snapshot: snapshot,
                                   pgDump: pgDump, conninfo: conninfo)
        var dataExcluded = Set<DDLEntryKey>()
        for pattern in selection.excludeTableData {
            dataExcluded.formUnion(try entries(["--table=\(pattern)"], snapshot: snapshot, pgDump: pgDump, conninfo: conninfo))
        }
        let extensionsDumped = selected.contains { $0.type == "EXTENSION" }
        var catalog = snapshot.catalog
        catalog.tables = catalog.tables.filter { table in
            if table.extensionFilter != nil { return extensionsDumped }
            let entry = DDLEntryKey(type: "TABLE", schema: table.schema, name: table.name)
            return selected.contains(entry) && !dataExcluded.contains(entry)
        }
        catalog.materializedViews = catalog.materializedViews.filter { selected.contains(DDLEntryKey(type: "MATERIALIZED VIEW", schema: $0.schema, name: $0.name)) }
        let sequences = snapshot.sequences.filter { selected.contains(DDLEntryKey(type: "SEQUENCE", schema: $0.schema, name: $0.name)) }
        catalog.sequences = catalog.sequences.filter { selected.contains(DDLEntryKey(type: "SEQUENCE", schema: $0.schema, name: $0.name)) }
        if catalog.tables.isEmpty && selected.isEmpty {
            throw DRKitError(.usage, "the selection (\(selection.pgDumpArguments.joined(separator: " "))) matches nothing in \(snapshot.source.database)")
        }
        return BackupSnapshot(coordinator: snapshot.coordinator, id: snapshot.id, locksEveryTable: snapshot.locksEveryTable, lockSlots: snapshot.lockSlots,
                              time: snapshot.time, source: snapshot.source, catalog: catalog,
                              sequences: sequences, extensions: snapshot.extensions,
                              largeObjects: selection.includesOnly ? [] : snapshot.largeObjects, streamPosition: snapshot.streamPosition)
    }

    /// The entries pg_dump's pre-data names under `arguments`.
    private static func entries(_ arguments: [String], snapshot: BackupSnapshot, pgDump: PgDump, conninfo: String) throws -> Set<DDLEntryKey> {
        var text: [UInt8] = []
        do {
            try pgDump.run(arguments: ["--schema-only", "--section=pre-data", "--snapshot=\(snapshot.id)"] + arguments, conninfo: conninfo) {
                text.appendBytes($0)
            }
        } catch let error as DRKitError where error.message.contains("no matching") {
            // pg_dump's own words, e.g. "no matching tables were found": the patterns select nothing.
            let reason = error.message.components(separatedBy: "error: ").last ?? error.message
            throw DRKitError(.usage, "the selection \(arguments.joined(separator: " ")) selects nothing in \(snapshot.source.database) (pg_dump: \(reason))")
        } catch {
            throw DRKitError.wrap(error, "resolving the selection \(arguments.joined(separator: " "))")
        }
        // A header-like line inside a function body or a comment's text names nothing.
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        return Set(zip(lines, DumpScriptLines.kinds(of: lines.lazy.map(\.utf8))).compactMap { $1 == .entryHeader ? DDLEntryKey(header: $0) : nil })
    }
}
