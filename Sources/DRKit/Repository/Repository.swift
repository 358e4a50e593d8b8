import Archive
import ObjectStorage
import Foundation
import Common

/// A backup repository: a store plus the layout `<backup-id>/manifest.json`, `<backup-id>/...objects`.
public final class Repository: Sendable {
    public let store: ObjectStore
    /// Object Lock retention set on every backup object this command writes (never on lease objects,
    /// which must be removable); nil for none.
    public let objectLock: ObjectLock?

    /// Backup objects in a directory skip the fsync of their folder after each rename;
    /// `makeBackupObjectsDurable` syncs the backup's folders once before the manifest is written
    /// (a backup's commit rule). Set only by the backup engine.
    let batchesDurability: Bool
    /// `--max-rate`: backup objects written and read through this repository pay here.
    public let rateLimiter: RateLimiter?

    public init(store: ObjectStore, objectLock: ObjectLock? = nil) {
        self.store = store
        self.objectLock = objectLock
        self.batchesDurability = false
        self.rateLimiter = nil
    }

    private init(store: ObjectStore, objectLock: ObjectLock?, batchesDurability: Bool, rateLimiter: RateLimiter?) {
        self.store = store
        self.objectLock = objectLock
        self.batchesDurability = batchesDurability
        self.rateLimiter = rateLimiter
    }

    /// The same repository, writing backup objects without a folder sync each (directories only; S3
    /// objects are durable when their upload returns).
    func batchingDurability() -> Repository {
        Repository(store: store, objectLock: objectLock, batchesDurability: store is DeferredDurability, rateLimiter: rateLimiter)
    }

    /// The same repository, its backup objects' stored bytes read and written at most at `limiter`'s rate.
    public func limited(to limiter: RateLimiter?) -> Repository {
        Repository(store: store, objectLock: objectLock, batchesDurability: batchesDurability, rateLimiter: limiter)
    }

    /// `sink`, paying the rate limit first when there is one.
    func limitedSink(_ sink: ByteSink) -> ByteSink {
        rateLimiter.map { RateLimitedSink(limiter: $0, next: sink) } ?? sink
    }

    /// Before a commit: the names of every object of `backupId` become durable.
    func makeBackupObjectsDurable(_ backupId: String) throws {
        guard batchesDurability, let files = store as? DeferredDurability else { return }
        do { try files.syncFolders(under: backupId) } catch { throw DRKitError.wrap(error, "making the backup's objects durable") }
    }

    /// The same repository, writing backup objects under `lock`; refused (exit 2) up front when the
    /// store cannot keep it, rather than after the first object.
    public func locking(_ lock: ObjectLock?) throws -> Repository {
        if lock != nil, try !objectLockEnabled() {
            throw DRKitError(.usage, store is ObjectLockReading
                ? "--object-lock: the bucket of \(store.location) does not have Object Lock enabled (it can only be turned on when the bucket is created: aws s3api create-bucket --object-lock-enabled-for-bucket ...); see docs/runbooks/ransomware.md"
                : "--object-lock: \(store.location) is a directory; S3 Object Lock needs an s3:// repository (local objects are made read-only instead)")
        }
        return Repository(store: store, objectLock: lock, batchesDurability: batchesDurability, rateLimiter: rateLimiter)
    }

    /// A writer for one of a backup's objects, carrying the repository's Object Lock.
    public func makeBackupObjectWriter(key: String) throws -> ObjectWriter {
        let writer: ObjectWriter
        if batchesDurability, let files = store as? DeferredDurability {
            writer = try files.makeWriter(key: key, lock: objectLock, syncFolder: false)
        } else {
            writer = try store.makeWriter(key: key, lock: objectLock)
        }
        return rateLimiter.map { RateLimitedSink(limiter: $0, next: writer) } ?? writer
    }

    public func putBackupObject(key: String, bytes: [UInt8]) throws {
        try store.put(key: key, bytes: bytes, lock: objectLock)
    }

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
        try resolve(reference, among: try backups())
    }

    private func resolve(_ reference: String, among all: [ManifestFile]) throws -> ManifestFile {
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

    /// `resolve`, with the key at hand: `latest` is ordered by plaintext summaries, which anyone who
    /// can write the repository can edit (a forged old snapshot time hides the real newest backup). So
    /// every encrypted backup whose id says it started after the chosen one is authenticated; one whose
    /// summary does not match its manifest is named and refused (exit 5), never passed over.
    public func resolve(_ reference: String, keys: KeyOptions) throws -> ManifestFile {
        let all = try backups()
        let file = try resolve(reference, among: all)
        guard reference == "latest", try keys.canOpenBackups(), let chosenStart = BackupId.startTime(of: file.summary.backupId) else { return file }
        let later = all.filter {
            $0.isEncrypted && (BackupId.startTime(of: $0.summary.backupId).map { $0 > chosenStart } ?? true)
        }
        for other in later {  // the chosen one is authenticated when the caller opens it
            do { _ = try openBackup(other, keys: keys) } catch {
                let e = DRKitError.wrap(error)
                throw DRKitError(.integrity, "cannot resolve latest: backup \(other.summary.backupId) does not authenticate with the given key (\(e.message)); its plaintext summary may have been edited to change which backup is latest: inspect it, or name the backup to use", cause: error)
            }
        }
        return file
    }

    public func writeManifest(_ file: ManifestFile) throws {
        try putBackupObject(key: "\(file.summary.backupId)/\(ManifestFile.objectName)", bytes: try file.encoded())
    }

    /// The Object Lock that protects a whole backup, as the store reports it: the weakest retention of
    /// its manifest and of every object uploaded in parts (some stores drop the lock of those; a single
    /// upload carries its headers as the manifest does). nil when any of them has none.
    public func lock(of backupId: String) throws -> ObjectLock? {
        guard let reader = store as? ObjectLockReading else { return nil }
        do {
            let parted = try objects(of: backupId).filter(\.uploadedInParts).map(\.key)
            var weakest: ObjectLock?
            for key in ["\(backupId)/\(ManifestFile.objectName)"] + parted {
                guard let lock = try reader.lock(of: key) else { return nil }
                weakest = weakest.map { current in
                    ObjectLock(mode: current.mode == .compliance && lock.mode == .compliance ? .compliance : .governance,
                               retainUntil: min(current.retainUntil, lock.retainUntil))
                } ?? lock
            }
            return weakest
        } catch {
            throw DRKitError.wrap(error, "reading the Object Lock of \(backupId)")
        }
    }

    /// Whether backups here can carry Object Lock retention (an S3 bucket with Object Lock enabled).
    public func objectLockEnabled() throws -> Bool {
        guard let reader = store as? ObjectLockReading else { return false }
        do { return try reader.objectLockEnabled() } catch { throw DRKitError.wrap(error, "reading the Object Lock configuration of \(store.location)") }
    }

    /// Every stored object of a backup folder, manifest included.
    public func objects(of backupId: String) throws -> [ObjectInfo] {
        try store.list(prefix: backupId + "/")
    }
}
