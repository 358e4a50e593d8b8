import Archive
import ObjectStorage
import Foundation
import Common
import PostgresClient

/// `drkit forget`: applies a retention policy to a repository. Dry run unless `execute`.
///
/// Decisions use only authenticated values (each manifest is opened with the key, so a forged
/// summary cannot make a backup look old). Removal is ordered so that a half-removed backup is never
/// listed: a `forgotten` marker, then the manifest, then the other objects, then the marker. A run
/// interrupted part-way is finished by the next one (folders with the marker and no manifest).
public enum Forget {
    public struct Report: Codable, Sendable {
        public var repository: String
        public var policy: RetentionPolicy
        public var decisions: [RetentionPolicy.Decision]
        /// Backups whose removal an earlier, interrupted run had started, finished now.
        public var finishedInterrupted: [String]
        public var executed: Bool
        /// Locks that end before the policy would release the backup (ransomware could delete it then).
        public var warnings: [String] = []
        /// Change segments (point-in-time recovery) that no kept base backup needs.
        public var changeArchive: [ChangeArchivePruning] = []

        public var kept: [String] { decisions.filter(\.keep).map(\.backupId) }
        public var removed: [String] { decisions.filter { !$0.keep }.map(\.backupId) }
    }

    public static let marker = "forgotten"

    /// `publicKey`: with no key or identity that opens the backups (a host holding only age recipients),
    /// each encrypted backup's signed retention facts decide instead.
    public static func run(repository: Repository, policy: RetentionPolicy, keys: KeyOptions, execute: Bool,
                           audit: AuditStore? = nil, operatorName: String = NSUserName(), now: Date = Date(),
                           publicKey: Minisign.PublicKey? = nil) throws -> Report {
        try policy.validate()
        let lease = execute ? try Lease.acquire(.forget, repository: repository, conflicts: { $0.kind == .forget }) : nil
        defer { lease?.release() }
        let backups = try repository.backups()
        let interrupted = try interruptedRemovals(in: repository, completed: Set(backups.map(\.summary.backupId)))
        var positions: [String: (database: String, position: LSN)] = [:]
        let canOpen = try keys.canOpenBackups()
        let useFacts = publicKey != nil && !canOpen
        let candidates = try backups.map { file -> RetentionPolicy.Candidate in
            if useFacts, file.isEncrypted, let publicKey {
                let facts = try RetentionFacts.verified(file, publicKey: publicKey, in: repository)
                if !facts.partial, let position = facts.streamPosition.flatMap(LSN.init) { positions[facts.backupId] = (facts.database, position) }
                return RetentionPolicy.Candidate(backupId: facts.backupId, database: facts.database, series: facts.series, time: facts.snapshotTime)
            }
            let manifest = try repository.openBackup(file, keys: keys).manifest
            if manifest.selection == nil, let position = manifest.streamPosition.flatMap(LSN.init) {
                positions[manifest.backupId] = (manifest.source.database, position)
            }
            return RetentionPolicy.Candidate(backupId: manifest.backupId, database: manifest.source.database,
                                             series: RetentionPolicy.series(database: manifest.source.database, selection: manifest.selection?.pgDumpArguments),
                                             time: manifest.snapshotTime)
        }
        var decisions = try sparingLeased(policy.decide(candidates), in: repository)
        var warnings: [String] = []
        if try repository.objectLockEnabled() {
            (decisions, warnings) = try sparingLocked(decisions, policy: policy, in: repository, now: now)
        }
        let pruning = try ChangeArchivePruning.plan(kept: decisions.filter(\.keep).compactMap { positions[$0.backupId] }, in: repository)
        var changeArchive = pruning.map(\.0)
        if execute {
            for id in interrupted { try removeObjects(of: id, from: repository) }
            for decision in decisions where !decision.keep { try remove(decision.backupId, from: repository) }
            // After the backups: a segment goes only once no kept base can need it.
            changeArchive = try ChangeArchivePruning.execute(pruning, in: repository, now: now)
        }
        if let audit { try record(decisions, execute: execute, repository: repository, audit: audit, operatorName: operatorName) }
        var report = Report(repository: repository.store.location, policy: policy, decisions: decisions,
                            finishedInterrupted: interrupted, executed: execute, warnings: warnings)
        report.changeArchive = changeArchive
        return report
    }

    /// A backup that a running command holds (a `repo copy` reading it) stays this time, with the
    /// holder as its reason; a later run removes it.
    static func sparingLeased(_ decisions: [RetentionPolicy.Decision], in repository: Repository) throws -> [RetentionPolicy.Decision] {
        let holders = Dictionary(try Lease.list(in: repository, staleAfter: Lease.defaultStaleAfter).live.compactMap { lease in
            lease.backupId.map { ($0, lease) }
        }, uniquingKeysWith: { a, _ in a })
        return decisions.map { decision in
            guard !decision.keep, let holder = holders[decision.backupId] else { return decision }
            var spared = decision
            spared.keep = true
            spared.reasons = ["in use by \(holder.describe)"]
            return spared
        }
    }

    /// Object Lock: a backup whose retention has not ended stays, reported as "retained until DATE"
    /// (deleting it would only hide it behind delete markers, or fail); a later run removes it. A kept
    /// backup whose lock ends before the policy would release it is warned about. One HEAD per backup.
    static func sparingLocked(_ decisions: [RetentionPolicy.Decision], policy: RetentionPolicy, in repository: Repository,
                              now: Date) throws -> ([RetentionPolicy.Decision], [String]) {
        var shortLocks: [(backupId: String, lockEnds: Date, releasedAt: Date)] = []
        let spared = try decisions.map { decision -> RetentionPolicy.Decision in
            guard let lock = try repository.lock(of: decision.backupId) else { return decision }
            if !decision.keep && lock.retainUntil > now {
                var kept = decision
                kept.keep = true
                kept.reasons = ["retained until \(Timestamps.iso8601(lock.retainUntil)) (object lock, \(lock.mode.rawValue))"]
                return kept
            }
            if decision.keep, let horizon = policy.horizon, lock.retainUntil < decision.time.addingTimeInterval(horizon) {
                shortLocks.append((decision.backupId, lock.retainUntil, decision.time.addingTimeInterval(horizon)))
            }
            return decision
        }
        guard let first = shortLocks.first, let horizon = policy.horizon else { return (spared, []) }
        return (spared, ["\(shortLocks.count) kept backup(s) have an object lock that ends before the retention policy would release them (e.g. \(first.backupId): lock ends \(Timestamps.iso8601(first.lockEnds)), the policy may keep it until \(Timestamps.iso8601(first.releasedAt))); once a lock ends, anyone allowed to delete can remove the backup: lock for at least \(Int((horizon / 86400).rounded(.up))) days (backup --lock-days, or --lock-for-policy)"])
    }

    /// The marker first: should this run stop after the manifest is gone, the next run knows the
    /// folder is being forgotten rather than being written.
    static func remove(_ backupId: String, from repository: Repository) throws {
        do {
            try repository.store.put(key: "\(backupId)/\(marker)", bytes: Array("removed by drkit forget\n".utf8))
            try repository.store.delete(keys: ["\(backupId)/\(ManifestFile.objectName)"])
        } catch { throw DRKitError.wrap(error, "removing backup \(backupId)") }
        try removeObjects(of: backupId, from: repository)
    }

    static func removeObjects(of backupId: String, from repository: Repository) throws {
        do {
            let keys = try repository.objects(of: backupId).map(\.key)
            let markerKey = "\(backupId)/\(marker)"
            try repository.store.delete(keys: keys.filter { $0 != markerKey })
            try repository.store.delete(keys: [markerKey])
        } catch { throw DRKitError.wrap(error, "removing the objects of backup \(backupId)") }
    }

    /// Backup folders without a manifest that carry the marker: one folder listing, then one small
    /// listing per folder that has no manifest (rare: interrupted or running backups).
    static func interruptedRemovals(in repository: Repository, completed: Set<String>) throws -> [String] {
        do {
            return try repository.store.listFolders(prefix: "").filter { BackupId.isValid($0) && !completed.contains($0) }.filter {
                try !repository.store.list(prefix: "\($0)/\(marker)").isEmpty
            }
        } catch { throw DRKitError.wrap(error, "listing \(repository.store.location)") }
    }

    /// One audit record per decision, so retention is as accountable as a drill.
    static func record(_ decisions: [RetentionPolicy.Decision], execute: Bool, repository: Repository, audit: AuditStore,
                       operatorName: String) throws {
        let recorder = RunbookRecorder(checklist: "forget:\(repository.store.location)", operatorName: operatorName, audit: audit,
                                       console: .silent())
        for decision in decisions {
            let verdict = decision.keep ? "keep: " + decision.reasons.joined(separator: ", ") : (execute ? "removed" : "would remove")
            let outcome = StepOutcome(passed: true, summary: verdict, figure: decision.keep ? "keep" : "remove",
                                      rule: "retention", output: "\(decision.backupId) \(decision.series) \(Timestamps.iso8601(decision.time)) \(verdict)", exitCode: 0)
            _ = try recorder.record(name: "forget \(decision.backupId): \(verdict)", kind: "retention", advisory: false, outcome: outcome,
                                    startedAt: Date(), finishedAt: Date())
        }
    }
}
