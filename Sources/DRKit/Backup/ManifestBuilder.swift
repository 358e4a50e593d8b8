import Archive
import Foundation
import Common

/// Phase 4 of a backup, pure: what was read and written becomes the manifest and its plaintext summary.
enum ManifestBuilder {
    struct Inputs {
        var backupId: String
        var startedAt: Date
        var finishedAt: Date
        var snapshotTime: Date
        var source: SourceRecord
        var catalog: Catalog
        var sequences: [SequenceRecord]
        var written: WrittenObjects
        var codec: Codec
        var keyFingerprint: String?
        var extensions: [ExtensionRecord] = []
        var globals: ObjectRecord?
        var run: String?
        var selection: SelectionRecord?
        var streamPosition: String?
        var standby: StandbyRecord?
    }

    static func build(_ inputs: Inputs) throws -> (BackupManifest, BackupSummary) {
        guard let preData = inputs.written.ddl["pre-data"], let postData = inputs.written.ddl["post-data"] else {
            throw DRKitError(.tool, "backup failed: DDL sections were not written")
        }
        var packedSlices: [Int: PackSlice] = [:]
        for pack in inputs.written.packs {
            for (tableIndex, slice) in zip(pack.tables, pack.record.slices) { packedSlices[tableIndex] = slice }
        }
        let tables = inputs.catalog.tables.enumerated().map { index, table -> TableRecord in
            let objects = (inputs.written.chunks[index] ?? []).sorted { $0.0 < $1.0 }.map(\.1)
            let slice = packedSlices[index]
            return TableRecord(schema: table.schema, name: table.name, kind: table.kind, columns: table.columns,
                               rows: objects.reduce(slice?.rows ?? 0) { $0 + $1.rows },
                               plainBytes: objects.reduce(slice?.plainBytes ?? 0) { $0 + $1.plainBytes },
                               objects: objects)
        }
        var manifest = BackupManifest(
            backupId: inputs.backupId, toolVersion: DRKitVersion.current, source: inputs.source, snapshotTime: inputs.snapshotTime,
            startedAt: inputs.startedAt, finishedAt: inputs.finishedAt,
            compression: .init(algorithm: inputs.codec.algorithm.rawValue, level: inputs.codec.level),
            preData: preData, postData: postData, tables: tables, sequences: inputs.sequences,
            materializedViews: inputs.catalog.materializedViews.map { MaterializedViewRecord(schema: $0.schema, name: $0.name, populated: $0.populated) },
            keyFingerprint: inputs.keyFingerprint, extensions: inputs.extensions)
        manifest.globals = inputs.globals
        manifest.ddlIndex = inputs.written.ddl["toc"]
        manifest.statistics = inputs.written.ddl["statistics"]
        manifest.run = inputs.run
        manifest.selection = inputs.selection
        manifest.largeObjects = inputs.written.largeObjects.isEmpty ? nil : inputs.written.largeObjects
        manifest.packs = inputs.written.packs.isEmpty ? nil : inputs.written.packs.map(\.record)
        manifest.streamPosition = inputs.streamPosition
        manifest.standby = inputs.standby
        let objects = manifest.allObjects
        var summary = BackupSummary(
            backupId: inputs.backupId, toolVersion: DRKitVersion.current, database: inputs.source.database,
            serverVersion: inputs.source.serverVersion, snapshotTime: inputs.snapshotTime, startedAt: inputs.startedAt,
            finishedAt: inputs.finishedAt, tableCount: tables.count, objectCount: objects.count,
            storedBytes: objects.reduce(0) { $0 + $1.size }, encrypted: inputs.keyFingerprint != nil,
            keyFingerprint: inputs.keyFingerprint, run: inputs.run, globals: inputs.globals == nil ? nil : true,
            partial: inputs.selection == nil ? nil : true)
        summary.streamPosition = inputs.streamPosition
        summary.effectiveTime = inputs.standby?.lastReplayedCommit
        return (manifest, summary)
    }
}
