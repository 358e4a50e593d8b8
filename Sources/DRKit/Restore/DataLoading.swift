import Archive
import PostgresClient
import Foundation
import Common

/// COPY FROM of the stored objects: a table's own object, or a pack of small tables in one transaction.
extension RestoreExecution {
    /// Loads one unit; a pack's worker then runs its tables' indexes, keys and ANALYZE.
    func load(_ unit: DataUnit, index: Int, plan: RestorePlan, on connection: Connection, progress: ProgressReporter,
              stop: @escaping @Sendable () -> Bool) throws {
        switch unit {
        case .object(let table, let record):
            try load(table, record, on: connection, progress: progress, stop: stop)
        case .pack(let pack):
            try loadPack(pack, tables: plan.tables, on: connection, progress: progress, stop: stop)
            for batch in plan.packDDL[index] ?? [] {
                do { try connection.execute(batch) } catch {
                    throw DRKitError.wrap(error, "post-data DDL of the tables in \(pack.object.name)")
                }
            }
        }
    }

    static func copyInStatement(_ table: TableRecord) -> String {
        let columns = table.columns.isEmpty ? "" : " (" + table.columns.map(Connection.quoteIdentifier).joined(separator: ", ") + ")"
        return "COPY \(Connection.qualified(table.schema, table.name))\(columns) FROM STDIN"
    }

    private func load(_ table: TableRecord, _ record: ObjectRecord, on connection: Connection, progress: ProgressReporter,
                      stop: @escaping @Sendable () -> Bool) throws {
        let copy: CopyInWriter
        do { copy = try connection.copyIn(RestoreExecution.copyInStatement(table)) } catch {
            throw DRKitError.wrap(error, "loading \(table.schema).\(table.name)")
        }
        let sink = CopyInSink(copy: copy, progress: progress, stop: stop)
        do {
            _ = try objects.read(record, destination: sink)
            try sink.flushProgress()
            try copy.finish()
            progress.add(bytes: 0, rows: record.rows)
            progress.objectDone(estimate: record.plainBytes)
        } catch {
            copy.abort(reason: "drkit: \(error)")
            throw DRKitError.wrap(error, "loading \(table.schema).\(table.name)")
        }
    }

    /// Loads a pack's tables one after another in one transaction, which commits only after the pack's
    /// hash, authentication and every slice's row count were checked: one commit for hundreds of small
    /// tables. Slices of tables a partial restore left out are read and checked, not loaded.
    private func loadPack(_ pack: PackRecord, tables: [String: TableRecord], on connection: Connection, progress: ProgressReporter,
                          stop: @escaping @Sendable () -> Bool) throws {
        var loading: (name: String, copy: CopyInWriter)?
        do {
            try connection.execute("BEGIN")
            _ = try objects.readPack(pack) { index in
                let slice = pack.slices[index]
                guard let table = tables[slice.qualifiedKey] else { return nil }
                let copy = try connection.copyIn(RestoreExecution.copyInStatement(table))
                loading = (slice.qualifiedKey, copy)
                return SliceCopySink(CopyInSink(copy: copy, progress: progress, stop: stop), rows: slice.rows, progress: progress) {
                    loading = nil
                }
            }
            try connection.execute("COMMIT")
            progress.objectDone(estimate: pack.object.plainBytes)
        } catch {
            loading?.copy.abort(reason: "drkit: \(error)")
            _ = try? connection.execute("ROLLBACK")
            throw DRKitError.wrap(error, "loading \(loading?.name ?? pack.object.name)")
        }
    }
}

/// Feeds decompressed COPY text to the server and counts it for the progress line.
final class CopyInSink: ByteSink {
    private let copy: CopyInWriter
    private let progress: ProgressReporter
    private let stop: @Sendable () -> Bool
    private var pendingBytes: Int64 = 0

    init(copy: CopyInWriter, progress: ProgressReporter, stop: @escaping @Sendable () -> Bool) {
        self.copy = copy
        self.progress = progress
        self.stop = stop
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if stop() { throw DRKitError(.tool, "stopped: another worker failed") }
        try copy.write(bytes)
        pendingBytes += Int64(bytes.count)
        if pendingBytes >= 4 << 20 { try flushProgress() }
    }

    func finish() throws {}

    func finishCopy() throws { try copy.finish() }

    func flushProgress() throws {
        progress.add(bytes: pendingBytes, rows: 0)
        pendingBytes = 0
    }
}

/// One table's slice of a pack into its COPY: ends the COPY when the slice ends (inside the pack's
/// transaction, so nothing commits before the whole pack is checked).
final class SliceCopySink: ByteSink {
    private let copy: CopyInSink
    private let rows: Int64
    private let progress: ProgressReporter
    private let ended: () -> Void

    init(_ copy: CopyInSink, rows: Int64, progress: ProgressReporter, ended: @escaping () -> Void) {
        self.copy = copy
        self.rows = rows
        self.progress = progress
        self.ended = ended
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws { try copy.write(bytes) }

    func finish() throws {
        try copy.flushProgress()
        try copy.finishCopy()
        ended()
        progress.add(bytes: 0, rows: rows)
    }
}
