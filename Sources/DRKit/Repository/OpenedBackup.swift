import Archive
import Foundation

/// A backup resolved, its data key found and its manifest authenticated: where every command that
/// reads a backup starts (restore, verify, cat, parity, drill, forget, list, globals).
public struct OpenedBackup: Sendable {
    public let file: ManifestFile
    /// nil for an unencrypted backup.
    public let dataKey: [UInt8]?
    public let manifest: BackupManifest

    public var backupId: String { file.summary.backupId }

    /// The backup's objects, read and checked with its key.
    func objects(in repository: Repository) throws -> BackupObjects {
        try BackupObjects(repository: repository, backupId: backupId, dataKey: dataKey, manifest: manifest)
    }
}

extension Repository {
    /// Resolves `reference` (an id, a unique prefix of one, or `latest`, authenticated with the key),
    /// finds the key envelope that opens it and opens its manifest. Errors name the backup.
    public func openBackup(_ reference: String, keys: KeyOptions) throws -> OpenedBackup {
        try openBackup(try resolve(reference, keys: keys), keys: keys)
    }

    /// Opens an already listed backup with the key: its summary is checked against its manifest.
    public func openBackup(_ file: ManifestFile, keys: KeyOptions) throws -> OpenedBackup {
        let dataKey = try keys.dataKey(for: file, in: self)
        do { return OpenedBackup(file: file, dataKey: dataKey, manifest: try file.open(dataKey: dataKey)) } catch {
            throw DRKitError.wrap(error, "manifest of \(file.summary.backupId)")
        }
    }
}
