import Archive
import ObjectStorage
import Foundation
import Common

/// `drkit key rotate`: gives every backup a key envelope for a new key-encryption key, then (unless
/// asked to keep it) removes the old key's envelopes. Envelopes are objects of their own: nothing is
/// edited in place, no manifest and no data object is rewritten.
public enum KeyRotation {
    /// One side of a rotation: a symmetric key or passphrase, or age keys (identities to open with,
    /// recipients to seal to: a rotation to recipients needs no identity).
    public enum Side: Sendable {
        case key(KeySource)
        case age(identities: [Age.Identity], recipients: [Age.Recipient])

        var name: String {
            switch self {
            case .key(let source): return "\(source.kind) key"
            case .age(_, let recipients): return recipients.isEmpty ? "age identity" : AgeEnvelopes.fingerprint(recipients)
            }
        }

        /// The envelope this side opens and the data key in it.
        func open(_ file: Sealed, in repository: Repository) throws -> (envelopeKey: String, dataKey: [UInt8]) {
            switch self {
            case .key(let source):
                let (stored, dataKey) = try file.open(with: source, in: repository)
                return (stored.key, dataKey)
            case .age(let identities, let recipients):
                if !identities.isEmpty, let opened = try AgeEnvelopes.openEnvelope(backupId: file.id, identities: identities, in: repository) {
                    return (opened.key, opened.dataKey)
                }
                throw DRKitError(.integrity, "no age envelope of \(file.id) opens with the given identit\(identities.count == 1 ? "y" : "ies")" + (recipients.isEmpty ? "" : " (recipients alone open nothing)"))
            }
        }

        /// Whether the backup already has this side's envelope (for recipients, without opening it).
        func isPresent(_ file: Sealed, in repository: Repository) throws -> Bool {
            if case .age(_, let recipients) = self, !recipients.isEmpty {
                let key = AgeEnvelopes.key(backupId: file.id, recipients: recipients)
                return try repository.store.list(prefix: key).contains { $0.key == key }
            }
            return (try? open(file, in: repository)) != nil
        }

        /// Writes this side's envelope for `dataKey`; returns its object key.
        func write(dataKey: [UInt8], for file: Sealed, in repository: Repository) throws -> String {
            switch self {
            case .key(let source):
                let envelope = try KeyEnvelope.wrap(dataKey: dataKey, backupId: file.id, source: source)
                try KeyEnvelopes.write(envelope, backupId: file.id, in: repository)
                return KeyEnvelopes.key(backupId: file.id, fingerprint: envelope.kek.fingerprint)
            case .age(_, let recipients):
                guard !recipients.isEmpty else { throw DRKitError(.usage, "the new side of a rotation to age needs recipients") }
                try AgeEnvelopes.write(dataKey: dataKey, recipients: recipients, backupId: file.id, in: repository)
                return AgeEnvelopes.key(backupId: file.id, recipients: recipients)
            }
        }
    }

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
        try run(repository: repository, from: .key(old), to: .key(new), keepOld: keepOld, retireOthers: retireOthers)
    }

    public static func run(repository: Repository, from old: Side, to new: Side, keepOld: Bool = false,
                           retireOthers: Bool = false) throws -> Outcome {
        let lease = try Lease.acquire(.rotate, repository: repository, conflicts: { $0.kind == .backup || $0.kind == .copy || $0.kind == .rotate })
        defer { lease.release() }
        var outcome = Outcome()
        var opened: [(file: Sealed, envelopeKey: String, dataKey: [UInt8])] = []
        var rotatedEarlier: [Sealed] = []
        for file in try Sealed.all(in: repository) {
            guard file.encrypted else {
                outcome.skipped.append(file.id)
                continue
            }
            do {
                let (envelopeKey, dataKey) = try old.open(file, in: repository)
                opened.append((file, envelopeKey, dataKey))
            } catch let oldError {
                // An earlier run of this rotation removed the old envelope already.
                guard (try? new.isPresent(file, in: repository)) == true else { throw oldError }
                rotatedEarlier.append(file)
                outcome.alreadyRotated.append(file.id)
            }
        }
        var newEnvelopes: [String: String] = [:]
        for (file, _, dataKey) in opened {
            let backupId = file.id
            do {
                newEnvelopes[backupId] = try new.write(dataKey: dataKey, for: file, in: repository)
            } catch {
                throw DRKitError.wrap(error, "adding the new key's envelope to \(backupId) (run the rotation again to finish; every backup still opens with the old key)")
            }
            outcome.rotated.append(backupId)
        }
        for (file, envelopeKey, _) in opened {
            let backupId = file.id
            if keepOld {
                outcome.oldKeyStillOpens.append((backupId, "--keep-old-key"))
            } else if envelopeKey == newEnvelopes[backupId] {
                continue  // the "old" key is the new one: its envelope is the one that now opens the backup
            } else if envelopeKey.hasSuffix("/" + ManifestFile.objectName) {
                outcome.oldKeyStillOpens.append((backupId, "format 1: its envelope is inside its manifest, which is never rewritten"))
            } else {
                do { try repository.store.delete(keys: [envelopeKey]) } catch {
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
    private static func account(for files: [Sealed], new: Side, retireOthers: Bool, in repository: Repository,
                                outcome: inout Outcome) throws {
        for file in files {
            let backupId = file.id
            let newKey: String
            if case .age(_, let recipients) = new, !recipients.isEmpty {
                newKey = AgeEnvelopes.key(backupId: backupId, recipients: recipients)
            } else {
                newKey = try new.open(file, in: repository).envelopeKey
            }
            var others: [String] = []
            let symmetric = try KeyEnvelopes.all(backupId: file.id, inManifest: file.inManifest, in: repository)
                .map { (key: $0.key, name: "\($0.envelope.kek.kind) \($0.envelope.kek.fingerprint)") }
            let age = try AgeEnvelopes.all(backupId: file.id, in: repository)
                .map { (key: $0, name: "age \(($0 as NSString).lastPathComponent.dropLast(AgeEnvelopes.suffix.count))") }
            for stored in symmetric + age where stored.key != newKey {
                let name = stored.name
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
