import Archive
import PostgresClient
import ObjectStorage
import Foundation
import Common

public struct BackupOptions: Sendable {
    public var conninfo: String
    public var jobs: Int = 2
    public var codec: Codec = .default
    /// Tables larger than this (heap bytes) are split into several objects.
    public var splitBytes: Int64 = 64 << 20
    /// Tables smaller than this are packed together into shared objects (0: every table its own objects).
    public var packBelowBytes: Int64 = 1 << 20
    /// nil and no recipients: no encryption (the CLI only allows that with an explicit `--no-encrypt`).
    public var key: KeySource?
    /// age recipients: each can open the backup alone with its identity; the host needs only these.
    public var recipients: [Age.Recipient] = []
    /// Signs the backup's retention facts (RetentionFacts), so `forget` can decide without opening it.
    public var signingKey: Minisign.SecretKey?
    public var showProgress = true
    /// Tables that lost more than this fraction of their rows (or bytes) since the previous backup are
    /// reported and recorded in the manifest.
    public var warnShrink = 0.2
    /// ...and beyond this one, the backup (still committed) exits 1.
    public var failShrink: Double?
    /// Simulations only (the 30-day autonomy rehearsal), never set by the CLI: the clock that dates
    /// the backup. When set, it also stands in for the snapshot's time, so retention sees simulated days.
    public var clock: (@Sendable () -> Date)?
    /// Carry the cluster's roles, tablespaces and database properties (`--globals`).
    public var includeGlobals = false
    /// ...with role password hashes (superuser only).
    public var rolePasswords = false
    /// Globals already read for a whole `--all-databases` run, so every database of it carries the same.
    public var runGlobals: ClusterGlobals?
    /// The `--all-databases` run this backup belongs to.
    public var run: String?
    /// A partial backup: what pg_dump's `--table`/`--schema` patterns (and exclusions) select.
    public var selection = SelectionRecord()
    /// Only the cluster's globals (roles, tablespaces, database properties): no schema, no data.
    /// Listed under the database name `(globals)`, so that retention and `latest` keep it apart.
    public var globalsOnly = false
    /// Link the backup to the database's change stream (record its `streamPosition`): nil decides by
    /// whether the repository holds a change archive of the database (`drkit stream`).
    public var linkToStream: Bool?
    /// On a hot standby: refuse (exit 1) when its replay is further behind than this, in seconds...
    public var maxStandbyLag: Double = 300
    /// ...unless this is set: then a warning.
    public var allowStandbyLag = false

    public init(conninfo: String, key: KeySource?) {
        self.conninfo = conninfo
        self.key = key
    }
}

public struct BackupResult: Sendable {
    public var manifest: BackupManifest
    public var summary: BackupSummary
    public var duration: Double
}

/// Consistent logical backup of one database into a repository.
///
/// One coordinator transaction (REPEATABLE READ) exports its snapshot; pg_dump (DDL) and every worker
/// connection (data, `COPY ... TO STDOUT`) import it, so schema, rows, counts and sequence values all
/// describe the same instant. The manifest is written last: until then the backup does not exist.
public final class BackupEngine {
    let options: BackupOptions
    let repository: Repository
    let console: Console

    public init(options: BackupOptions, repository: Repository, console: Console = .shared) {
        self.options = options
        // Folders are synced once before the commit instead of after every object (thousands of small tables).
        self.repository = repository.batchingDurability()
        self.console = console
    }

    /// A standby's data are as old as its replay: said, and refused (nothing written yet) past `maxStandbyLag`.
    private func judgeStandby(_ standby: StandbyRecord, backupId: String, redacted: String) throws {
        let replayed = standby.lastReplayedCommit.map { "last replayed commit \(Timestamps.iso8601($0))" } ?? "no commit replayed since it started"
        let lag = "replay \(Format.seconds(standby.replayLagSeconds)) s behind what it received"
        guard standby.replayLagSeconds > options.maxStandbyLag else {
            console.note("backup \(backupId): \(redacted) is a standby: \(replayed), \(lag)\(standby.lastReplayedCommit == nil ? "" : "; the backup's data are as of that commit")")
            return
        }
        let limit = "--max-standby-lag \(Format.seconds(options.maxStandbyLag)) s"
        guard options.allowStandbyLag else {
            throw DRKitError(.checkFailed, "\(redacted) is a standby whose \(lag), more than \(limit) (\(replayed)): back up the primary, wait for the standby to catch up, or pass --allow-standby-lag; nothing was written")
        }
        console.note("warning: \(redacted) is a standby whose \(lag), more than \(limit) (\(replayed)); going on (--allow-standby-lag): the backup's data are as of that commit")
    }

    /// lease → snapshot → plan → execute → build the manifest → check → commit. Only the commit makes
    /// the backup exist; any failure before it removes what was written. The lease, held from before
    /// the first object to after the manifest, keeps `repo clean` and `key rotate` away.
    public func run() throws -> BackupResult {
        let realStart = Date()
        let startedAt = options.clock?() ?? realStart
        let backupId = BackupId.make(startedAt: startedAt)
        let redacted = (try? ConnectionOptions(options.conninfo).redacted) ?? "the database"
        let lease = try Lease.acquire(.backup, backupId: backupId, repository: repository, conflicts: { $0.kind == .rotate })
        defer { lease.release() }
        // On failure the coordinator connection closes with the snapshot, which ends its transaction.
        let whole = try BackupSnapshot.take(conninfo: options.conninfo, redacted: redacted, linkStream: { [options, repository] database in
            guard !options.globalsOnly else { return false }
            return try options.linkToStream ?? !StreamArchive(repository: repository).lineages(database: database).isEmpty
        }, note: { [console] in console.note("backup \(backupId): \($0)") })
        if let position = whole.streamPosition { console.note("backup \(backupId): linked to the change stream at \(position)") }
        if let standby = whole.standby { try judgeStandby(standby, backupId: backupId, redacted: redacted) }
        let encryption: (envelope: KeyEnvelope?, dataKey: [UInt8], fingerprint: String)?
        do {
            if let key = options.key {
                let (envelope, dataKey) = try KeyEnvelope.create(backupId: backupId, source: key)
                encryption = (envelope, dataKey, envelope.kek.fingerprint)
            } else if !options.recipients.isEmpty {
                encryption = (nil, SecureRandom.bytes(32), AgeEnvelopes.fingerprint(options.recipients))
            } else {
                encryption = nil
            }
        } catch {
            throw DRKitError.wrap(error, "preparing encryption")
        }
        if let encryption {
            // The envelopes first: from its first data object on, the backup can be opened by its keys.
            try executeDiscardingOnFailure(backupId) {
                if let envelope = encryption.envelope { try KeyEnvelopes.write(envelope, backupId: backupId, in: repository) }
                if !options.recipients.isEmpty {
                    try AgeEnvelopes.write(dataKey: encryption.dataKey, recipients: options.recipients, backupId: backupId, in: repository)
                }
            }
        }
        let globals = options.includeGlobals || options.globalsOnly ? try executeDiscardingOnFailure(backupId) {
            try options.runGlobals ?? ClusterGlobals.read(whole.coordinator, rolePasswords: options.rolePasswords)
        } : nil
        if options.runGlobals == nil { for line in globals?.omitted ?? [] { console.note("note: \(line)") } }
        let pgDump = try PgDump.locate(serverMajor: whole.source.serverVersionNum / 10000)
        let snapshot = options.globalsOnly ? whole.globalsOnly() : options.selection.isEmpty ? whole : try executeDiscardingOnFailure(backupId) {
            try PartialSelection.apply(options.selection, to: whole, pgDump: pgDump, conninfo: options.conninfo)
        }
        let tasks = BackupPlanner.plan(snapshot.catalog, splitBytes: options.splitBytes,
                                       tidRangeScans: snapshot.source.serverVersionNum >= 140000,
                                       packBelowBytes: options.packBelowBytes, largeObjects: snapshot.largeObjects)
        let largeObjectNote = snapshot.largeObjects.isEmpty ? "" : ", \(snapshot.largeObjects.count) large objects"
        console.note("backup \(backupId): \(snapshot.catalog.tables.count) tables, \(snapshot.catalog.sequences.count) sequences\(largeObjectNote), \(tasks.count) data objects from \(redacted), \(options.jobs) jobs")

        let withStatistics = !options.globalsOnly && snapshot.source.serverVersionNum >= 180000
        let written = try lease.explaining { try executeDiscardingOnFailure(backupId) {
            let progress = ProgressReporter(label: "backup \(backupId)", totalBytes: tasks.reduce(0) { $0 + $1.estimatedBytes },
                                            totalObjects: tasks.count + BackupExecution.schemaObjectCount(globalsOnly: options.globalsOnly, withStatistics: withStatistics))
            if options.showProgress { progress.start(console: console) }
            defer { progress.stop(console: console) }
            let execution = BackupExecution(repository: repository, backupId: backupId, codec: options.codec, dataKey: encryption?.dataKey,
                                            conninfo: options.conninfo, snapshotId: snapshot.id, tables: snapshot.catalog.tables,
                                            hasLargeObjects: !snapshot.largeObjects.isEmpty, selection: options.selection,
                                            globalsOnly: options.globalsOnly, lockSlots: snapshot.lockSlots, coordinatorLocksTables: snapshot.locksEveryTable,
                                            withStatistics: withStatistics, progress: progress,
                                            leaseHeld: { try lease.throwIfBroken() })
            do { return try execution.run(tasks, jobs: options.jobs, pgDump: pgDump) } catch { throw DRKitError.wrap(error, "backup failed") }
        } }
        for warning in written.warnings { console.note("warning: \(warning)") }
        let globalsRecord = try globals.map { globals in try executeDiscardingOnFailure(backupId) {
            try BackupExecution.writeGlobals(globals, repository: repository, backupId: backupId, codec: options.codec, dataKey: encryption?.dataKey)
        } }
        snapshot.release()
        let finishedAt = options.clock.map { _ in startedAt.addingTimeInterval(Date().timeIntervalSince(realStart)) } ?? Date()
        var (manifest, summary) = try executeDiscardingOnFailure(backupId) {
            try ManifestBuilder.build(.init(backupId: backupId, startedAt: startedAt, finishedAt: finishedAt,
                                            snapshotTime: options.clock == nil ? snapshot.time : startedAt,
                                            source: snapshot.source, catalog: snapshot.catalog, sequences: snapshot.sequences,
                                            written: written, codec: options.codec, keyFingerprint: encryption?.fingerprint,
                                            extensions: snapshot.extensions, globals: globalsRecord, run: options.run,
                                            selection: options.selection.isEmpty ? nil : options.selection,
                                            streamPosition: snapshot.streamPosition?.description, standby: whole.standby))
        }
        manifest.shrinkage = compareWithPrevious(manifest)
        try executeDiscardingOnFailure(backupId) {
            try lease.confirmHeld()
            try confirmObjectsPresent(backupId, manifest.allObjects, envelope: encryption?.envelope, recipients: options.recipients)
            try repository.makeBackupObjectsDurable(backupId)
            // The commit point: only now does the backup exist for list, verify and restore.
            let file = try ManifestFile.make(manifest, summary: summary, dataKey: encryption?.dataKey)
            if let signingKey = options.signingKey {
                try RetentionFacts.write(RetentionFacts(manifest: manifest, manifestBytes: try file.encoded()), key: signingKey, in: repository)
            }
            do { try repository.writeManifest(file) } catch {
                throw DRKitError.wrap(error, "writing the manifest")
            }
        }
        if let shrinkage = manifest.shrinkage, !shrinkage.tables.isEmpty {
            console.note("warning: " + ShrinkCheck.describe(shrinkage))
            if let failShrink = options.failShrink, let worst = shrinkage.tables.first, worst.drop > failShrink {
                throw DRKitError(.checkFailed, "backup \(backupId) is committed, but \(worst.schema).\(worst.name) lost \(Int((worst.drop * 100).rounded()))% since backup \(shrinkage.previousBackupId), more than --fail-on-shrink \(Int((failShrink * 100).rounded()))%: check for data loss before relying on it")
            }
        }
        return BackupResult(manifest: manifest, summary: summary, duration: finishedAt.timeIntervalSince(startedAt))
    }

    /// The anomaly check against the previous backup of this database; nil when there is none, or it
    /// cannot be opened with this key (a note says so: the check is advice, never the backup's failure).
    private func compareWithPrevious(_ manifest: BackupManifest) -> ShrinkReport? {
        do {
            guard let previous = try repository.previousBackup(of: manifest.source.database, before: manifest.backupId,
                                                               partial: manifest.selection != nil) else { return nil }
            let dataKey = previous.isEncrypted ? try options.key.map { try KeyEnvelopes.dataKey(for: previous, source: $0, in: repository) } : nil
            let previousManifest = try previous.open(dataKey: dataKey)
            // Partial backups compare only with the same selection.
            guard previousManifest.selection == manifest.selection else { return nil }
            return ShrinkCheck.compare(manifest, with: previousManifest, threshold: options.warnShrink)
        } catch {
            console.note("note: not compared with the previous backup: \(DRKitError.wrap(error).message)")
            return nil
        }
    }

    /// Every object the manifest will name is still stored, at the size written. Something that
    /// removed or replaced one while the backup ran (a `repo clean` that found the lease stale) must
    /// fail the backup here, not leave a listed backup that cannot be restored.
    private func confirmObjectsPresent(_ backupId: String, _ records: [ObjectRecord], envelope: KeyEnvelope?, recipients: [Age.Recipient]) throws {
        let stored: [String: Int64]
        do {
            stored = Dictionary(try repository.objects(of: backupId).map { ($0.key, $0.size) }, uniquingKeysWith: { a, _ in a })
        } catch { throw DRKitError.wrap(error, "checking the objects of backup \(backupId)") }
        let damaged = records.filter { stored["\(backupId)/\($0.name)"] != $0.size }
        let envelopeKeys = (envelope.map { [KeyEnvelopes.key(backupId: backupId, fingerprint: $0.kek.fingerprint)] } ?? [])
            + (recipients.isEmpty ? [] : [AgeEnvelopes.key(backupId: backupId, recipients: recipients)])
        if envelopeKeys.contains(where: { stored[$0] == nil }) {
            throw DRKitError(.repository, "backup \(backupId) cannot be committed: its key envelope was removed while it ran (e.g. by `repo clean` after this backup's lease looked stale); nothing was committed")
        }
        guard damaged.isEmpty else {
            throw DRKitError(.repository, "backup \(backupId) cannot be committed: \(damaged.count) of its \(records.count) objects were removed or changed while it ran (first: \(damaged[0].name)), e.g. by `repo clean` after this backup's lease looked stale; nothing was committed")
        }
    }

    private func executeDiscardingOnFailure<T>(_ backupId: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            discardPartialBackup(backupId)
            throw error
        }
    }

    /// Best effort: a failed backup leaves no objects behind. Whatever remains (a crash) has no
    /// manifest, so it is never listed or restored.
    private func discardPartialBackup(_ backupId: String) {
        if let objects = try? repository.objects(of: backupId), !objects.isEmpty {
            try? repository.store.delete(keys: objects.map(\.key))
        }
    }
}
