import Archive
import Foundation
import Common

/// The anomaly check: a backup compares row counts and sizes per table with the previous backup of
/// the same database. Pure once the previous manifest is in hand.
enum ShrinkCheck {
    static func compare(_ manifest: BackupManifest, with previous: BackupManifest, threshold: Double) -> ShrinkReport {
        let before = Dictionary(previous.tables.map { ("\($0.schema).\($0.name)", $0) }, uniquingKeysWith: { a, _ in a })
        let now = Set(manifest.tables.map { "\($0.schema).\($0.name)" })
        var tables: [ShrinkReport.Table] = manifest.tables.compactMap { table in
            guard let old = before["\(table.schema).\(table.name)"] else { return nil }
            let entry = ShrinkReport.Table(schema: table.schema, name: table.name, previousRows: old.rows, rows: table.rows,
                                           previousPlainBytes: old.plainBytes, plainBytes: table.plainBytes)
            return entry.drop > threshold ? entry : nil
        }
        // A table that is gone lost everything.
        tables += previous.tables.filter { !now.contains("\($0.schema).\($0.name)") && $0.rows > 0 }.map {
            ShrinkReport.Table(schema: $0.schema, name: $0.name, previousRows: $0.rows, rows: 0, previousPlainBytes: $0.plainBytes, plainBytes: 0)
        }
        let rows = manifest.tables.reduce(0) { $0 + $1.rows }, previousRows = previous.tables.reduce(0) { $0 + $1.rows }
        let size = manifest.allObjects.reduce(0) { $0 + $1.size }, previousSize = previous.allObjects.reduce(0) { $0 + $1.size }
        return ShrinkReport(previousBackupId: previous.backupId,
                            rowsRatio: previousRows > 0 ? Double(rows) / Double(previousRows) : 1,
                            sizeRatio: previousSize > 0 ? Double(size) / Double(previousSize) : 1,
                            tables: tables.sorted { $0.drop > $1.drop }, threshold: threshold)
    }

    static func describe(_ report: ShrinkReport) -> String {
        let listed = report.tables.prefix(5).map { t in
            "\(t.schema).\(t.name) \(t.previousRows) → \(t.rows) rows (-\(Int((t.drop * 100).rounded()))%)"
        }.joined(separator: ", ")
        let more = report.tables.count > 5 ? " and \(report.tables.count - 5) more" : ""
        return "\(report.tables.count) table(s) shrank by more than \(Int((report.threshold * 100).rounded()))% since backup \(report.previousBackupId): \(listed)\(more)"
    }
}

extension Repository {
    /// The newest completed backup of `database` older than `backupId`: folders newest first, one
    /// manifest read each until one matches (about one read per database in the repository).
    /// The newest earlier backup of `database` that is partial exactly when this one is (a whole
    /// backup never compares with a partial one, whose missing tables would look vanished).
    func previousBackup(of database: String, before backupId: String, partial: Bool = false) throws -> ManifestFile? {
        let folders = try store.listFolders(prefix: "").filter { BackupId.isValid($0) && $0 < backupId }.sorted(by: >)
        for id in folders {
            guard let file = try? manifestFile(id: id) else { continue }
            if file.summary.database == database && (file.summary.partial ?? false) == partial { return file }
        }
        return nil
    }
}
