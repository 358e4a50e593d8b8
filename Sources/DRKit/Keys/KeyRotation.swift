import Foundation
import Archive
import Common
import ObjectStorage

/// `drkit key rotate`: gives every backup a key envelope for a new key-encryption key, then (unless
/// asked to keep it) removes the old key's envelopes. Envelopes are objects of their own: nothing is
/// edited in place, no manifest and no data object is rewritten.
public enum KeyRotation {
    public struct Outcome: Sendable {
        /// Backups that now open with the new key.
        public var rotated: [String] = []
        /// Unencrypted backups, left as they are.
        public var skipped: [String] = []
        /// Backups the old key still opens, with the reason: format 1 (its envelope is inside its
        /// manifest, never rewritten), an envelope that could not be removed (Object Lock), or `keepOld`.
        public var oldKeyStillOpens: [(backupId: String, reason: String)] = []
    }

    /// Refused (exit 6) while a backup or copy runs: it would finish under the old key after the rotation.
    /// The old key is checked against every backup first, so a wrong key changes nothing; new envelopes
    /// are all written before any old one is removed, so an interrupted rotation loses no access: run
    /// it again with the same keys to finish.
    public static func run(repository: Repository, from old: KeySource, to new: KeySource, keepOld: Bool = false) throws -> Outcome {
        let lease = try Lease.acquire(.rotate, repository: repository, conflicts: { $0.kind == .backup || $0.kind == .copy || $0.kind == .rotate })
        defer { lease.release() }
        var outcome = Outcome()
        var opened: [(file: ManifestFile, envelope: KeyEnvelopes.Stored, dataKey: [UInt8])] = []
        for file in try repository.backups() {
            guard file.isEncrypted else {
                outcome.skipped.append(file.summary.backupId)
                continue
            }
            let (stored, dataKey) = try KeyEnvelopes.open(file, with: old, in: repository)
            opened.append((file, stored, dataKey))
        }
        var newEnvelopes: [String: String] = [:]
        for (file, stored, dataKey) in opened {
            let backupId = file.summary.backupId
            do {
                var envelope = try KeyEnvelope.wrap(dataKey: dataKey, backupId: backupId, source: new)
                envelope.segmentSize = stored.envelope.segmentSize
                try KeyEnvelopes.write(envelope, backupId: backupId, in: repository)
                newEnvelopes[backupId] = KeyEnvelopes.key(backupId: backupId, fingerprint: envelope.kek.fingerprint)
            } catch {
                throw DRKitError.wrap(error, "adding the new key's envelope to \(backupId) (run the rotation again to finish; every backup still opens with the old key)")
            }
            outcome.rotated.append(backupId)
        }
        for (file, stored, _) in opened {
            let backupId = file.summary.backupId
            if keepOld {
                outcome.oldKeyStillOpens.append((backupId, "--keep-old-key"))
            } else if stored.key == newEnvelopes[backupId] {
                continue  // the "old" key is the new one: its envelope is the one that now opens the backup
            } else if stored.key.hasSuffix("/" + ManifestFile.objectName) {
                outcome.oldKeyStillOpens.append((backupId, "format 1: its envelope is inside its manifest, which is never rewritten"))
            } else {
                do { try repository.store.delete(keys: [stored.key]) } catch {
                    outcome.oldKeyStillOpens.append((backupId, "its old envelope could not be removed (\(DRKitError.wrap(error).message)); Object Lock keeps it until its retention ends"))
                }
            }
        }
        return outcome
    }
}
