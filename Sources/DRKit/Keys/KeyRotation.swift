import Foundation
import Archive
import Common
import ObjectStorage

/// `drkit key rotate`: re-wraps every backup's data key under a new key-encryption key.
/// Only manifests are rewritten (atomically, one at a time); data objects are untouched.
public enum KeyRotation {
    public struct Outcome: Sendable {
        public var rotated: [String]
        public var skipped: [String]
    }

    /// Refused (exit 6) while a backup runs: it would finish under the old key after the rotation.
    public static func run(repository: Repository, from old: KeySource, to new: KeySource) throws -> Outcome {
        let lease = try Lease.acquire(.rotate, repository: repository, conflicts: { $0.kind == .backup || $0.kind == .copy || $0.kind == .rotate })
        defer { lease.release() }
        var outcome = Outcome(rotated: [], skipped: [])
        let backups = try repository.backups()
        // Check the old key against every backup first, so a wrong key changes nothing.
        for file in backups {
            guard let envelope = file.encryption else { continue }
            do { _ = try envelope.unwrap(backupId: file.summary.backupId, source: old) } catch {
                throw DRKitError.wrap(error)
            }
        }
        for var file in backups {
            guard let envelope = file.encryption else {
                outcome.skipped.append(file.summary.backupId)
                continue
            }
            do {
                file.encryption = try envelope.rewrapped(backupId: file.summary.backupId, from: old, to: new)
                file.summary.keyFingerprint = file.encryption?.kek.fingerprint
                try repository.writeManifest(file)
            } catch {
                throw DRKitError.wrap(error, "rotating the key of \(file.summary.backupId) (backups before it are rotated; run again with the new key as old for the rest)")
            }
            outcome.rotated.append(file.summary.backupId)
        }
        return outcome
    }
}
