import Archive
import ObjectStorage
import Foundation
import Common

/// `drkit repo clean`: finds what interrupted backups left behind (folders without a manifest,
/// incomplete multipart uploads, temporary files) older than a grace period, and removes it.
///
/// A backup with a live lease is never touched, whatever its age. The order is what makes that hold
/// against a backup finishing meanwhile: objects are listed first, leases second, and each folder's
/// manifest is checked again just before its objects are deleted. A backup removes its lease only
/// after writing its manifest, so a folder whose lease is gone by the second listing already shows
/// its manifest to the third.
public enum RepositoryCleaner {
    public struct Plan: Codable, Sendable {
        public struct Folder: Codable, Sendable {
            public var backupId: String
            public var objects: Int
            public var bytes: Int64
            public var ageSeconds: Double
        }

        public struct Write: Codable, Sendable {
            public var key: String
            public var id: String
            public var ageSeconds: Double
        }

        public struct InUse: Codable, Sendable {
            public var backupId: String
            public var heldBy: String
            public var heartbeatAgeSeconds: Double
        }

        public struct StaleLease: Codable, Sendable {
            public var heldBy: String
            public var heartbeatAgeSeconds: Double
            public var keys: [String]
        }

        public var incompleteBackups: [Folder]
        public var incompleteWrites: [Write]
        /// Incomplete because still running: a live lease protects them.
        public var inUse: [InUse]
        /// Leases whose holder stopped sending heartbeats; broken on --execute.
        public var staleLeases: [StaleLease]
        /// Found but younger than the grace period (possibly still running): left alone.
        public var tooRecent: Int
        public var executed: Bool
    }

    public static func plan(_ repository: Repository, grace: TimeInterval, staleAfter: TimeInterval = Lease.defaultStaleAfter,
                            now: Date = Date()) throws -> Plan {
        // Only drkit's own layout is walked: backup folders by name, never whatever else shares the root.
        let objects: [ObjectInfo]
        do {
            objects = try repository.store.listFolders(prefix: "").filter(BackupId.isValid).flatMap { try repository.store.list(prefix: $0 + "/") }
        } catch { throw DRKitError.wrap(error, "listing \(repository.store.location)") }
        try Lease.checkStaleAfter(staleAfter)
        let leases = try Lease.list(in: repository, staleAfter: staleAfter, now: now)
        let running = Dictionary(leases.live.compactMap { lease in lease.backupId.map { ($0, lease) } }, uniquingKeysWith: { a, _ in a })
        // Backups whose lease is stale are abandoned, not "possibly still running": their lease is broken
        // in this run, so the grace period does not apply to them.
        let abandoned = Set(leases.stale.compactMap(\.record.backupId)).subtracting(running.keys)
        var inUse: [Plan.InUse] = []
        var byBackup: [String: [ObjectInfo]] = [:]
        for object in objects {
            let id = String(object.key.prefix { $0 != "/" })
            guard BackupId.isValid(id) else { continue }
            byBackup[id, default: []].append(object)
        }
        var tooRecent = 0
        var folders: [Plan.Folder] = []
        for (id, items) in byBackup.sorted(by: { $0.key < $1.key }) where !items.contains(where: { $0.key == "\(id)/\(ManifestFile.objectName)" }) {
            if let lease = running[id] {
                inUse.append(.init(backupId: id, heldBy: lease.describe, heartbeatAgeSeconds: now.timeIntervalSince(lease.heartbeat)))
                continue
            }
            let age = now.timeIntervalSince(BackupId.startTime(of: id) ?? now)
            if age < grace && !abandoned.contains(id) { tooRecent += 1; continue }
            folders.append(.init(backupId: id, objects: items.count, bytes: items.reduce(0) { $0 + $1.size }, ageSeconds: age))
        }
        var writes: [Plan.Write] = []
        if let listing = repository.store as? IncompleteWriteListing {
            do {
                // Never a running backup's writes, and never a lease's: stale leases have their own rule.
                for write in try listing.incompleteWrites() where running[String(write.key.prefix { $0 != "/" })] == nil
                    && !write.key.hasPrefix(Lease.folder + "/") {
                    let age = now.timeIntervalSince1970 - write.started
                    if age < grace && !abandoned.contains(String(write.key.prefix { $0 != "/" })) { tooRecent += 1; continue }
                    writes.append(.init(key: write.key, id: write.id, ageSeconds: age))
                }
            } catch { throw DRKitError.wrap(error, "listing incomplete uploads in \(repository.store.location)") }
        }
        let stale = leases.stale.map { Plan.StaleLease(heldBy: $0.record.describe, heartbeatAgeSeconds: now.timeIntervalSince($0.record.heartbeat), keys: $0.keys) }
        return Plan(incompleteBackups: folders, incompleteWrites: writes, inUse: inUse, staleLeases: stale, tooRecent: tooRecent, executed: false)
    }

    public static func execute(_ plan: Plan, on repository: Repository) throws -> Plan {
        let lease = try Lease.acquire(.clean, repository: repository)
        defer { lease.release() }
        for stale in plan.staleLeases { try Lease.breakStale(stale.keys, in: repository) }
        for folder in plan.incompleteBackups {
            // Re-check: a manifest written since the plan means the backup completed after all.
            let objects = try repository.objects(of: folder.backupId)
            guard !objects.contains(where: { $0.key.hasSuffix("/\(ManifestFile.objectName)") }) else { continue }
            do { try repository.store.delete(keys: objects.map(\.key)) } catch {
                throw DRKitError.wrap(error, "deleting incomplete backup \(folder.backupId)")
            }
        }
        if let listing = repository.store as? IncompleteWriteListing {
            for write in plan.incompleteWrites {
                do { try listing.discard(IncompleteWrite(key: write.key, id: write.id, started: 0)) } catch {
                    throw DRKitError.wrap(error, "discarding incomplete write \(write.key)")
                }
            }
        }
        var done = plan
        done.executed = true
        return done
    }
}
