import Foundation
import Archive
import Common
import ObjectStorage

/// `drkit repo clean`: finds what interrupted backups left behind (folders without a manifest,
/// incomplete multipart uploads, temporary files) older than a grace period, and removes it.
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

        public var incompleteBackups: [Folder]
        public var incompleteWrites: [Write]
        /// Found but younger than the grace period (possibly still running): left alone.
        public var tooRecent: Int
        public var executed: Bool
    }

    public static func plan(_ repository: Repository, grace: TimeInterval, now: Date = Date()) throws -> Plan {
        let objects: [ObjectInfo]
        do { objects = try repository.store.list(prefix: "") } catch { throw DRKitError.wrap(error, "listing \(repository.store.location)") }
        var byBackup: [String: [ObjectInfo]] = [:]
        for object in objects {
            let id = String(object.key.prefix { $0 != "/" })
            guard BackupId.isValid(id) else { continue }
            byBackup[id, default: []].append(object)
        }
        var tooRecent = 0
        var folders: [Plan.Folder] = []
        for (id, items) in byBackup.sorted(by: { $0.key < $1.key }) where !items.contains(where: { $0.key == "\(id)/\(ManifestFile.objectName)" }) {
            let age = now.timeIntervalSince(BackupId.startTime(of: id) ?? now)
            if age < grace { tooRecent += 1; continue }
            folders.append(.init(backupId: id, objects: items.count, bytes: items.reduce(0) { $0 + $1.size }, ageSeconds: age))
        }
        var writes: [Plan.Write] = []
        if let listing = repository.store as? IncompleteWriteListing {
            do {
                for write in try listing.incompleteWrites() {
                    let age = now.timeIntervalSince1970 - write.started
                    if age < grace { tooRecent += 1; continue }
                    writes.append(.init(key: write.key, id: write.id, ageSeconds: age))
                }
            } catch { throw DRKitError.wrap(error, "listing incomplete uploads in \(repository.store.location)") }
        }
        return Plan(incompleteBackups: folders, incompleteWrites: writes, tooRecent: tooRecent, executed: false)
    }

    public static func execute(_ plan: Plan, on repository: Repository) throws -> Plan {
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
