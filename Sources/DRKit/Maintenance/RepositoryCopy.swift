import Archive
import ObjectStorage
import Foundation
import Common

/// `drkit repo copy`: copies backups from one repository to another exactly as stored: nothing is
/// decrypted or recompressed, so no key is needed (except to list a format-1 encrypted backup's objects).
///
/// Per backup: read the source manifest; skip when the destination already holds the same backup
/// (copying only key envelopes it lacks);
/// take leases on both sides (forget spares the source backup, clean leaves the half-copied folder
/// alone); stream each missing object through SHA-256 into the destination, committing it only when
/// size and hash match the manifest; remove leftovers of an earlier interrupted copy; check that every
/// object is there; copy the key envelopes; then write the manifest bytes unchanged, last. Until that write the destination
/// does not list the backup, so an interrupted copy is never a listed-but-broken backup, and the next
/// run finishes it (objects already there are read back and hashed; damaged ones are copied again).
public enum RepositoryCopy {
    public enum Selection: Sendable, Equatable {
        /// A backup id, a unique prefix of one, or `latest`.
        case backup(String)
        /// Every backup the source has, including any that retention removed at the destination.
        case all
    }

    public struct Options: Sendable {
        public var jobs = 4
        public var showProgress = true
        /// Only needed for format-1 encrypted backups, whose object list is sealed.
        public var keys = KeyOptions()

        public init() {}
    }

    public struct BackupOutcome: Codable, Sendable {
        public enum Status: String, Codable, Sendable {
            /// Copied by this run (perhaps finishing an interrupted one).
            case copied
            /// The destination already held it: nothing transferred.
            case present
            /// `forget` removed it from the source while the copy ran: nothing was committed, leftovers removed.
            case removedAtSource
            case failed
        }

        public var backupId: String
        public var database: String
        public var status: Status
        public var objectsCopied = 0
        /// Objects an earlier, interrupted run had already copied.
        public var objectsAlreadyThere = 0
        public var bytesCopied: Int64 = 0
        /// Objects at the destination that the manifest does not name (left by an interrupted copy), removed.
        public var leftoversRemoved = 0
        /// Key envelopes (`keys/`) the destination lacked.
        public var envelopesCopied = 0
        public var seconds: Double = 0
        public var error: String?
        /// The exit code of `error`.
        public var exitCode: Int32?
    }

    public struct Report: Codable, Sendable {
        public var from: String
        public var to: String
        public var backups: [BackupOutcome]
        public var seconds: Double
        /// `--all`: the change archive (point-in-time recovery), lineage by lineage.
        public var changeArchive: [ChangeArchiveCopy] = []

        public var objectsCopied: Int { backups.reduce(0) { $0 + $1.objectsCopied } }
        public var bytesCopied: Int64 { backups.reduce(0) { $0 + $1.bytesCopied } }
        public var failures: [BackupOutcome] { backups.filter { $0.status == .failed } }
    }

    /// Copies the selection. A failing backup does not stop the others (`--all`); the report says which
    /// failed and why. Errors that stop everything (a repository that cannot be listed) are thrown.
    public static func run(from source: Repository, to destination: Repository, selection: Selection,
                           options: Options = Options(), console: Console = .shared) throws -> Report {
        let start = Date()
        let files: [ManifestFile]
        switch selection {
        case .all: files = try source.backups().reversed()  // oldest first: a stopped run leaves the older history complete
        case .backup(let reference): files = [try source.resolve(reference)]
        }
        if files.isEmpty { console.note("nothing to copy: \(source.store.location) has no completed backup") }
        var outcomes: [BackupOutcome] = []
        for file in files {
            let copier = BackupCopier(source: source, destination: destination, backupId: file.summary.backupId,
                                      database: file.summary.database, options: options, console: console)
            outcomes.append(copier.run())
        }
        let changes = selection == .all ? try ChangeArchiveCopy.run(from: source, to: destination) : []
        var report = Report(from: source.store.location, to: destination.store.location, backups: outcomes,
                            seconds: Date().timeIntervalSince(start))
        report.changeArchive = changes
        return report
    }

    /// Same backup on both sides: same id, same objects. The key envelope may differ (a key rotation
    /// run in one repository only), which does not make it another backup.
    static func sameBackup(_ a: ManifestFile, _ b: ManifestFile, objects: [StoredObject]) -> Bool {
        var left = a.summary, right = b.summary
        left.keyFingerprint = nil
        right.keyFingerprint = nil
        return left == right && (b.objects ?? objects) == objects
    }
}

/// Copies one backup; see `RepositoryCopy`.
private struct BackupCopier {
    let source: Repository
    let destination: Repository
    let backupId: String
    let database: String
    let options: RepositoryCopy.Options
    let console: Console

    func run() -> RepositoryCopy.BackupOutcome {
        let start = Date()
        var outcome = RepositoryCopy.BackupOutcome(backupId: backupId, database: database, status: .copied)
        do {
            try copy(&outcome)
        } catch where vanishedFromSource() {
            outcome.status = .removedAtSource
            discardUncommittedCopy()
            console.note("\(backupId) was removed from \(source.store.location) (forget) while it was being copied; nothing committed")
        } catch {
            let e = DRKitError.wrap(error, "copying backup \(backupId)")
            outcome.status = .failed
            outcome.error = e.message
            outcome.exitCode = e.code.exitCode
            console.note("copy of \(backupId) failed: \(e.message)")
        }
        outcome.seconds = Date().timeIntervalSince(start)
        return outcome
    }

    /// The source no longer lists the backup (its manifest is gone): a `forget` got there first.
    private func vanishedFromSource() -> Bool {
        (try? source.store.list(prefix: key(ManifestFile.objectName)).isEmpty) ?? false
    }

    /// Best effort: what this run wrote for a backup it could not commit (no manifest at the destination).
    private func discardUncommittedCopy() {
        guard let objects = try? destination.objects(of: backupId), !objects.isEmpty,
              !objects.contains(where: { $0.key == key(ManifestFile.objectName) }) else { return }
        try? destination.store.delete(keys: objects.map(\.key))
    }

    private func copy(_ outcome: inout RepositoryCopy.BackupOutcome) throws {
        let (manifestBytes, file) = try source.storedManifest(id: backupId)
        let objects: [StoredObject]
        if file.objectsReadableWithoutKey {
            objects = try file.storedObjects(dataKey: nil)
        } else {
            guard try options.keys.resolve() != nil else {
                throw DRKitError(.usage, "backup \(backupId) is format 1 and encrypted: its object list is sealed, so copying it needs the key (--key-file, DRKIT_KEY or --passphrase-env)")
            }
            objects = try file.storedObjects(dataKey: try options.keys.dataKey(for: file, in: source))
        }
        try checkOpenable(file)
        if try alreadyThere(file, objects: objects) {
            outcome.status = .present
            // A key rotated at the source since the last copy: its new envelope follows.
            outcome.envelopesCopied = try copyKeyEnvelopes()
            return
        }
        let sourceLease = try Lease.acquire(.copy, backupId: backupId, repository: source)
        defer { sourceLease.release() }
        let destinationLease = try Lease.acquire(.copy, backupId: backupId, repository: destination, conflicts: {
            $0.kind == .rotate || ($0.kind == .copy && $0.backupId == backupId)
        })
        defer { destinationLease.release() }
        try breakLeasesOfEarlierCopies(in: source)
        try breakLeasesOfEarlierCopies(in: destination)

        let existing = try storedSizes(in: destination)
        let damaged = try damagedObjects(objects.filter { existing[key($0.name)] == $0.size })
        if !damaged.isEmpty {
            console.note("copy \(backupId): \(damaged.count) object(s) an earlier copy left at \(destination.store.location) do not match the manifest (first: \(damaged[0].name)); copying them again")
            do { try destination.store.delete(keys: damaged.map { key($0.name) }) } catch {
                throw DRKitError.wrap(error, "removing damaged objects of an earlier copy of \(backupId)")
            }
        }
        let damagedNames = Set(damaged.map(\.name))
        let missing = objects.filter { existing[key($0.name)] != $0.size || damagedNames.contains($0.name) }
        outcome.objectsAlreadyThere = objects.count - missing.count
        let expected = Set(objects.map { key($0.name) })
        let leftovers = existing.keys.filter { !expected.contains($0) }.sorted()
        console.note("copy \(backupId) (\(database)): \(missing.count) of \(objects.count) objects to copy, \(Format.bytes(missing.reduce(0) { $0 + $1.size })), \(source.store.location) → \(destination.store.location)")

        let progress = ProgressReporter(label: "copy \(backupId)", totalBytes: missing.reduce(0) { $0 + $1.size }, totalObjects: missing.count, countsRows: false)
        if options.showProgress { progress.start(console: console) }
        defer { progress.stop(console: console) }
        try destinationLease.explaining {
            try WorkQueue(missing).run(workers: options.jobs, setUp: { _ in () }) { _, object in
                try copyObject(object, progress: progress)
            }
        }
        outcome.objectsCopied = missing.count
        outcome.bytesCopied = missing.reduce(0) { $0 + $1.size }

        if !leftovers.isEmpty {
            do { try destination.store.delete(keys: leftovers) } catch { throw DRKitError.wrap(error, "removing leftovers of an earlier copy of \(backupId)") }
            outcome.leftoversRemoved = leftovers.count
        }
        try discardIncompleteWrites()
        outcome.envelopesCopied = try copyKeyEnvelopes()
        try destinationLease.confirmHeld()
        let stored = try storedSizes(in: destination)
        let absent = objects.filter { stored[key($0.name)] != $0.size }
        guard absent.isEmpty else {
            throw DRKitError(.repository, "\(absent.count) of \(objects.count) copied objects of \(backupId) are not at \(destination.store.location) at their size (first: \(absent[0].name)); removed meanwhile? the manifest was not written, run the copy again")
        }
        // The commit point at the destination, with the source's exact bytes.
        do { try destination.putBackupObject(key: key(ManifestFile.objectName), bytes: manifestBytes) } catch {
            throw DRKitError.wrap(error, "writing the manifest of \(backupId) at \(destination.store.location)")
        }
    }

    private func key(_ name: String) -> String { "\(backupId)/\(name)" }

    /// An encrypted backup is copied only with a key envelope (without one nothing opens it); with a
    /// key at hand, only when an envelope opens with it and the manifest authenticates.
    private func checkOpenable(_ file: ManifestFile) throws {
        guard file.isEncrypted else { return }
        let envelopes = try KeyEnvelopes.all(of: file, in: source)
        let ageEnvelopes = try AgeEnvelopes.all(backupId: backupId, in: source)
        guard !envelopes.isEmpty || !ageEnvelopes.isEmpty else {
            throw DRKitError(.integrity, "backup \(backupId) is encrypted but has no key envelope at \(source.store.location): no key can open it; not copying it")
        }
        guard try options.keys.canOpenBackups() else { return }
        do { _ = try source.openBackup(file, keys: options.keys) } catch {
            let e = DRKitError.wrap(error)
            throw DRKitError(e.code, "backup \(backupId) cannot be opened with the given key (\(e.message)); not copying it", cause: error)
        }
    }

    /// Objects already at the destination at their size, read back and hashed: an interrupted copy's
    /// objects are trusted only when their SHA-256 matches the manifest.
    private func damagedObjects(_ present: [StoredObject]) throws -> [StoredObject] {
        let damaged = Locked([StoredObject]())
        try WorkQueue(present).run(workers: options.jobs, setUp: { _ in () }) { _, object in
            let hasher = HashingSink(next: nil)
            do { try destination.store.read(key: key(object.name), into: hasher) } catch {
                throw DRKitError.wrap(error, "reading \(key(object.name)) at \(destination.store.location)")
            }
            if hasher.byteCount != object.size || Hex.encode(hasher.finishHashing()) != object.sha256 {
                damaged.withLock { $0.append(object) }
            }
        }
        return damaged.current.sorted { $0.name < $1.name }
    }

    /// A copy of this backup that was killed left its leases; this run takes over its work.
    private func breakLeasesOfEarlierCopies(in repository: Repository) throws {
        for stale in try Lease.list(in: repository, staleAfter: Lease.defaultStaleAfter).stale
        where stale.record.kind == .copy && stale.record.backupId == backupId {
            try Lease.breakStale(stale.keys, in: repository)
        }
    }

    /// The destination already lists this backup. A different backup under the same id is refused:
    /// a copy never overwrites.
    private func alreadyThere(_ file: ManifestFile, objects: [StoredObject]) throws -> Bool {
        let there: ManifestFile
        do { there = try destination.manifestFile(id: backupId) } catch let e as DRKitError where e.code == .repository && (e.cause as? StorageError)?.kind == .notFound {
            return false
        }
        guard RepositoryCopy.sameBackup(file, there, objects: objects) else {
            throw DRKitError(.integrity, "\(destination.store.location) already holds a backup \(backupId) that differs from the source's (summary or object list); not overwriting it")
        }
        return true
    }

    /// Copies the key envelopes (`keys/`) the destination lacks. They are not in the object index:
    /// each is authenticated by its key-encryption key instead, so a damaged one simply does not open.
    /// Envelopes only the destination has (a rotation run there) stay.
    private func copyKeyEnvelopes() throws -> Int {
        let prefix = "\(backupId)/\(KeyEnvelopes.folder)/"
        do {
            let there = Set(try destination.store.list(prefix: prefix).map(\.key))
            var copied = 0
            for object in try source.store.list(prefix: prefix) where !there.contains(object.key) {
                try destination.putBackupObject(key: object.key, bytes: try source.store.get(key: object.key))
                copied += 1
            }
            return copied
        } catch { throw DRKitError.wrap(error, "copying the key envelopes of \(backupId)") }
    }

    /// Stored data and DDL objects by key: neither the manifest nor key envelopes.
    private func storedSizes(in repository: Repository) throws -> [String: Int64] {
        let envelopes = "\(backupId)/\(KeyEnvelopes.folder)/"
        do {
            return Dictionary(try repository.objects(of: backupId).filter { !$0.key.hasSuffix("/" + ManifestFile.objectName) && !$0.key.hasPrefix(envelopes) }.map { ($0.key, $0.size) },
                              uniquingKeysWith: { a, _ in a })
        } catch { throw DRKitError.wrap(error, "listing backup \(backupId) in \(repository.store.location)") }
    }

    /// Streams one object: source → SHA-256 → destination writer, committed only when size and hash
    /// match the manifest. Memory stays bounded by the destination's part buffers.
    private func copyObject(_ object: StoredObject, progress: ProgressReporter) throws {
        let writer: ObjectWriter
        do { writer = try destination.makeBackupObjectWriter(key: key(object.name)) } catch {
            throw DRKitError.wrap(error, "writing \(key(object.name)) at \(destination.store.location)")
        }
        let hasher = HashingSink(next: ProgressCountingSink(next: writer, progress: progress))
        do {
            do { try source.store.read(key: key(object.name), into: hasher) } catch {
                throw DRKitError.wrap(error, "reading \(key(object.name)) from \(source.store.location)")
            }
            let digest = hasher.finishHashing()
            guard hasher.byteCount == object.size, Hex.encode(digest) == object.sha256 else {
                throw DRKitError(.integrity, "object \(key(object.name)) at \(source.store.location) does not match its manifest (\(hasher.byteCount) bytes, sha256 \(Hex.encode(digest).prefix(12))…; expected \(object.size) bytes, \(object.sha256.prefix(12))…): the source copy is damaged; nothing was written for it")
            }
            // The object becomes visible only now, after its size and hash passed.
            do { try writer.finish() } catch { throw DRKitError.wrap(error, "writing \(key(object.name)) at \(destination.store.location)") }
        } catch {
            writer.abort()
            throw error
        }
        progress.objectDone(estimate: object.size)
    }

    /// Multipart uploads or temporary files this backup's earlier, killed copy left at the destination.
    private func discardIncompleteWrites() throws {
        guard let listing = destination.store as? IncompleteWriteListing else { return }
        do {
            for write in try listing.incompleteWrites() where write.key.hasPrefix(backupId + "/") { try listing.discard(write) }
        } catch { throw DRKitError.wrap(error, "discarding incomplete uploads of \(backupId) at \(destination.store.location)") }
    }
}

/// Passes bytes through and counts them into a progress reporter.
private final class ProgressCountingSink: ByteSink {
    let next: ByteSink
    let progress: ProgressReporter

    init(next: ByteSink, progress: ProgressReporter) {
        self.next = next
        self.progress = progress
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try next.write(bytes)
        progress.add(bytes: Int64(bytes.count), rows: 0)
    }

    func finish() throws { try next.finish() }
}

/// `backup --copy-to`: a committed backup copied to another repository, with the primary's Object
/// Lock. Never throws: the backup stands whatever happens to the copy, and the report says why it failed.
public struct CommittedCopy: Codable, Sendable {
    public var repository: String
    public var objects = 0
    public var bytes: Int64 = 0
    public var seconds = 0.0
    /// nil when the copy succeeded.
    public var error: String?

    public static func run(_ backupId: String, from primary: Repository, to location: String, settings: StorageSettings,
                           jobs: Int, showProgress: Bool) -> CommittedCopy {
        var report = CommittedCopy(repository: location)
        do {
            let destination = try Repository.open(location, create: true, s3: settings).locking(primary.objectLock)
            report.repository = destination.store.location
            var options = RepositoryCopy.Options()
            options.jobs = jobs
            options.showProgress = showProgress
            let outcome = try RepositoryCopy.run(from: primary, to: destination, selection: .backup(backupId), options: options).backups[0]
            report.objects = outcome.objectsCopied
            report.bytes = outcome.bytesCopied
            report.seconds = outcome.seconds
            report.error = outcome.status == .removedAtSource ? "the backup was removed from the primary (forget) before it was copied" : outcome.error
        } catch {
            report.error = DRKitError.wrap(error).message
        }
        return report
    }
}
