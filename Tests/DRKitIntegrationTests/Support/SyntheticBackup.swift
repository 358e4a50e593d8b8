import Foundation
import Archive
import Common
@testable import DRKit

/// A minimal, verifiable, unencrypted backup written through the library, for tests that need many
/// backups at chosen snapshot times (retention over simulated days, listing at scale).
enum SyntheticBackup {
    @discardableResult
    static func write(at time: Date, dataObjects: Int = 0, into repository: Repository) throws -> String {
        let id = BackupId.make(startedAt: time)
        let empty = ObjectRecord(name: "schema/pre-data.sql", size: 0, sha256: SHA256.hex(""), plainBytes: 0, rows: 0)
        var post = empty
        post.name = "schema/post-data.sql"
        for record in [empty, post] { try repository.store.put(key: "\(id)/\(record.name)", bytes: []) }
        for k in 0..<dataObjects { try repository.store.put(key: "\(id)/data/\(k)", bytes: []) }
        let source = SourceRecord(database: "app", serverVersion: "15", serverVersionNum: 150000, systemIdentifier: "1", encoding: "UTF8")
        let manifest = BackupManifest(backupId: id, toolVersion: DRKitVersion.current, source: source, snapshotTime: time, startedAt: time,
                                      finishedAt: time, compression: .init(algorithm: "none", level: 0), preData: empty, postData: post,
                                      tables: [], sequences: [], materializedViews: [])
        let summary = BackupSummary(backupId: id, toolVersion: DRKitVersion.current, database: "app", serverVersion: "15", snapshotTime: time,
                                    startedAt: time, finishedAt: time, tableCount: 0, objectCount: 2, storedBytes: 0, encrypted: false, keyFingerprint: nil)
        try repository.writeManifest(try ManifestFile.make(manifest, summary: summary, dataKey: nil))
        return id
    }
}
