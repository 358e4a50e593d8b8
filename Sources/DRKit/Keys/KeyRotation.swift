import Archive
import ObjectStorage
import Foundation
import Common

/// `drkit key rotate`: gives every backup a key envelope for a new key-encryption key, then (unless
/// asked to keep it) removes the old key's envelopes. Envelopes are objects of their own: nothing is
/// edited in place, no manifest and no data object is rewritten.
public enum KeyRotation {
    public struct Outcome: Sendable {
        /// Backups that got the new key's envelope in this run.
        public var rotated: [String] = []
        /// Backups an earlier run had rotated already (the new key opens them, the old one no longer does).
        public var alreadyRotated: [String] = []
        /// Unencrypted backups, left as they are.
        public var skipped: [String] = []
        /// Backups the old key still opens, with the reason: format 1 (its envelope is inside its
        /// manifest, never rewritten), an envelope that could not be removed (Object Lock), or `keepOld`.
        public var oldKeyStillOpens: [(backupId: String, reason: String)] = []
        /// After the run, for each encrypted backup, the keys other than the new one that have an
        /// envelope on it (and so open it): `key <fingerprint>` or `passphrase <fingerprint>`.
        public var otherKeys: [String: [String]] = [:]
        /// Envelopes of other keys removed by `retireOthers`.
        public var retired = 0

        /// Nothing was left to do: every encrypted backup already opened with the new key alone.
        public var wasAlreadyDone: Bool { rotated.isEmpty && !alreadyRotated.isEmpty && otherKeys.isEmpty && retired == 0 }
    }

    /// Refused (exit 6) while a backup or copy runs: it would finish under the old key after the rotation.
    /// The keys are checked against every backup first, so a wrong key changes nothing; new envelopes
    /// are all written before any old one is removed, so an interrupted rotation loses no access: run
    /// it again with the same keys to finish (backups it had finished are counted as already rotated).
    /// `retireOthers` removes every envelope but the new key's, whoever wrote it.
    public static func run(repository: Repository, from old: KeySource, to new: KeySource, keepOld: Bool = false,
                           retireOthers: Bool = false) throws -> Outcome {
        let lease = try Lease.acquire(.rotate, repository: repository, conflicts: { $0.kind == .backup || $0.kind == .copy || $0.kind == .rotate })
        defer { lease.release() }
        var outcome = Outcome()
        var opened: [(file: Sealed, envelope: KeyEnvelopes.Stored, dataKey: [UInt8])] = []
        var rotatedEarlier: [Sealed] = []
        for file in try Sealed.all(in: repository) {
            guard file.encrypted else {
                outcome.skipped.append(file.id)
                continue
            }
            do {
                let (stored, dataKey) = try file.open(with: old, in: repository)
                opened.append((file, stored, dataKey))
            } catch let oldError {
                // An earlier run of this rotation removed the old envelope already.
                guard (try? file.open(with: new, in: repository)) != nil else { throw oldError }
                rotatedEarlier.append(file)
                outcome.alreadyRotated.append(file.id)
            }
        }
        var newEnvelopes: [String: String] = [:]
        for (file, stored, dataKey) in opened {
            let backupId = file.id
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
            let backupId = file.id
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
        try account(for: opened.map(\.file) + rotatedEarlier,
                    new: new, retireOthers: retireOthers, in: repository, outcome: &outcome)
        return outcome
    }

    /// Which other keys still open each backup, read from the envelopes stored after the rotation (the
    /// old key kept, or a key an earlier `--keep-old-key` rotation left); removed with `retireOthers`.
    private static func account(for files: [Sealed], new: KeySource, retireOthers: Bool, in repository: Repository,
                                outcome: inout Outcome) throws {
        for file in files {
            let backupId = file.id
            let newKey = try file.open(with: new, in: repository).stored.key
            var others: [String] = []
            for stored in try KeyEnvelopes.all(backupId: file.id, inManifest: file.inManifest, in: repository) where stored.key != newKey {
                let name = "\(stored.envelope.kek.kind) \(stored.envelope.kek.fingerprint)"
                if retireOthers && !stored.key.hasSuffix("/" + ManifestFile.objectName) {
                    do {
                        try repository.store.delete(keys: [stored.key])
                        outcome.retired += 1
                        continue
                    } catch {
                        outcome.oldKeyStillOpens.append((backupId, "the envelope of \(name) could not be removed (\(DRKitError.wrap(error).message))"))
                    }
                }
                others.append(name)
            }
            if !others.isEmpty { outcome.otherKeys[backupId] = others }
        }
    }

    /// What a rotation re-wraps: every backup, and every lineage of the change archive
    /// (`stream/<lineage>`, whose envelopes open its segments).
    struct Sealed {
        var id: String
        var encrypted: Bool
        /// Format 1: the envelope inside the manifest.
        var inManifest: KeyEnvelope?

        static func all(in repository: Repository) throws -> [Sealed] {
            try repository.backups().map { Sealed(id: $0.summary.backupId, encrypted: $0.isEncrypted, inManifest: $0.encryption) }
                + StreamArchive(repository: repository).lineages().map { Sealed(id: StreamArchive.folder($0.lineage), encrypted: $0.encrypted) }
        }

        func open(with source: KeySource, in repository: Repository) throws -> (stored: KeyEnvelopes.Stored, dataKey: [UInt8]) {
            try KeyEnvelopes.open(backupId: id, inManifest: inManifest, with: source, in: repository)
        }
    }
}
