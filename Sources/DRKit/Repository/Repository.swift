import Foundation
import Archive
import Common
import ObjectStorage

/// A backup repository: a store plus the layout `<backup-id>/manifest.json`, `<backup-id>/...objects`.
public final class Repository: Sendable {
    public let store: ObjectStore

    public init(store: ObjectStore) { self.store = store }

    /// Opens a repository by location: a directory path, `file:///dir`, or `s3://bucket/prefix[?options]`
    /// (see `StorageRegistry`). `settings` carries the command's flags and environment.
    public static func open(_ location: String, create: Bool, s3 settings: StorageSettings = StorageSettings()) throws -> Repository {
        do {
            return Repository(store: try StorageRegistry.open(location, create: create, settings: settings))
        } catch let e as StorageError {
            throw DRKitError(e.kind == .invalidLocation ? .usage : .repository, e.message)
        }
    }

    /// Completed backups (those with a manifest), newest first. Folders without a manifest are
    /// interrupted or in-progress backups and are not listed. One folder listing, then one read per
    /// backup folder: never a listing of every object.
    public func backups() throws -> [ManifestFile] {
        let folders: [String]
        do { folders = try store.listFolders(prefix: "") } catch {
            throw DRKitError(.repository, "cannot list \(store.location): \(error)")
        }
        return try folders.filter(BackupId.isValid).compactMap { id -> ManifestFile? in
            do { return try manifestFile(id: id) } catch let e as DRKitError where e.code == .repository && (e.cause as? StorageError)?.kind == .notFound {
                return nil  // no manifest: interrupted or still running
            }
        }.sorted { BackupId.newestFirst($0.summary, $1.summary) }
    }

    public func manifestFile(id: String) throws -> ManifestFile {
        try storedManifest(id: id).file
    }

    /// The manifest file as stored (the exact bytes, which a copy writes unchanged) and decoded.
    public func storedManifest(id: String) throws -> (bytes: [UInt8], file: ManifestFile) {
        let bytes: [UInt8]
        do {
            bytes = try store.get(key: "\(id)/\(ManifestFile.objectName)")
        } catch let e as StorageError where e.kind == .notFound {
            throw DRKitError(.repository, "backup \(id) not found in \(store.location) (no manifest: it does not exist or never completed)", cause: e)
        } catch {
            throw DRKitError.wrap(error, "reading manifest of \(id)")
        }
        let file: ManifestFile
        do { file = try ManifestFile.decode(bytes) } catch {
            throw DRKitError(.integrity, "manifest of backup \(id) is unreadable: \(error)")
        }
        // The folder is bound to the backup: the id is inside the (authenticated) manifest too.
        guard file.summary.backupId == id else {
            throw DRKitError(.integrity, "folder \(id) holds the manifest of backup \(file.summary.backupId) (copied or renamed in the repository); refusing it")
        }
        return (bytes, file)
    }

    /// `latest` or an id (a unique prefix of one is accepted).
    public func resolve(_ reference: String) throws -> ManifestFile {
        let all = try backups()
        if reference == "latest" {
            guard let newest = all.first else {
                throw DRKitError(.repository, "no completed backup in \(store.location)")
            }
            return newest
        }
        let matches = all.filter { $0.summary.backupId.hasPrefix(reference) }
        if matches.count == 1 { return matches[0] }
        if matches.isEmpty {
            throw DRKitError(.repository, "backup \(reference) not found in \(store.location) (run `drkit list --repo ...` to see the backups)")
        }
        throw DRKitError(.usage, "\"\(reference)\" matches \(matches.count) backups; give more of the id")
    }

    public func writeManifest(_ file: ManifestFile) throws {
        try store.put(key: "\(file.summary.backupId)/\(ManifestFile.objectName)", bytes: try file.encoded())
    }

    /// Every stored object of a backup folder, manifest included.
    public func objects(of backupId: String) throws -> [ObjectInfo] {
        try store.list(prefix: backupId + "/")
    }
}
