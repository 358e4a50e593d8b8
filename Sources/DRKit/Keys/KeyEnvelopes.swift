import Archive
import ObjectStorage
import Foundation
import Common

/// A backup's key envelopes (format 2): `<backup-id>/keys/<kek-fingerprint>.json`, one object per
/// key-encryption key that can open the backup. A backup writes its first envelope before any data;
/// `key rotate` adds one per new key and removes the old key's: objects are added and removed, never
/// edited, which is what lets a repository live under S3 Object Lock. A format-1 backup carries its
/// envelope inside manifest.json, where it stays; envelope objects added by a rotation sit beside it.
public enum KeyEnvelopes {
    public static let folder = "keys"

    public static func key(backupId: String, fingerprint: String) -> String { "\(backupId)/\(folder)/\(fingerprint).json" }

    /// Stores an envelope unless one for the same key is already there (a repeated rotation).
    public static func write(_ envelope: KeyEnvelope, backupId: String, in repository: Repository) throws {
        let key = key(backupId: backupId, fingerprint: envelope.kek.fingerprint)
        do {
            if try repository.store.list(prefix: key).contains(where: { $0.key == key }) { return }
            try repository.putBackupObject(key: key, bytes: [UInt8](try JSONCoding.encoder.encode(envelope)))
        } catch { throw DRKitError.wrap(error, "writing the key envelope of \(backupId)") }
    }

    public struct Stored: Sendable {
        public var key: String
        public var envelope: KeyEnvelope
    }

    /// Every envelope of a backup: the envelope objects, then (format 1) the one inside the manifest
    /// (whose `key` is the manifest's).
    public static func all(of file: ManifestFile, in repository: Repository) throws -> [Stored] {
        try all(backupId: file.summary.backupId, inManifest: file.encryption, in: repository)
    }

    /// Every envelope stored for `backupId` (a backup, or a stream lineage `stream/<lineage>`), then the
    /// one a format-1 manifest carries.
    static func all(backupId: String, inManifest: KeyEnvelope?, in repository: Repository) throws -> [Stored] {
        var found: [Stored] = []
        do {
            for object in try repository.store.list(prefix: "\(backupId)/\(folder)/") where object.key.hasSuffix(".json") {
                let bytes: [UInt8]
                do { bytes = try repository.store.get(key: object.key) } catch let e as StorageError where e.kind == .notFound { continue }
                guard let envelope = try? JSONCoding.decoder.decode(KeyEnvelope.self, from: Data(bytes)) else {
                    throw DRKitError(.integrity, "key envelope \(object.key) is unreadable")
                }
                found.append(Stored(key: object.key, envelope: envelope))
            }
        } catch let e as DRKitError { throw e } catch { throw DRKitError.wrap(error, "reading the key envelopes of \(backupId)") }
        if let inManifest { found.append(Stored(key: "\(backupId)/\(ManifestFile.objectName)", envelope: inManifest)) }
        return found
    }

    /// The data key, from the envelope that `source` opens.
    public static func dataKey(for file: ManifestFile, source: KeySource, in repository: Repository) throws -> [UInt8] {
        try open(file, with: source, in: repository).dataKey
    }

    /// The envelope `source` opens, and the data key it holds. A raw key names its envelope by its
    /// fingerprint (one read); a passphrase is tried against each passphrase envelope. An interrupted
    /// rotation's old and new envelopes are both found.
    public static func open(_ file: ManifestFile, with source: KeySource, in repository: Repository) throws -> (stored: Stored, dataKey: [UInt8]) {
        try open(backupId: file.summary.backupId, inManifest: file.encryption, with: source, in: repository)
    }

    static func open(backupId: String, inManifest: KeyEnvelope?, with source: KeySource, in repository: Repository) throws -> (stored: Stored, dataKey: [UInt8]) {
        if case .key(let bytes) = source, inManifest == nil {
            let key = key(backupId: backupId, fingerprint: KeyEnvelope.fingerprint(ofKey: bytes))
            if let stored = try? repository.store.get(key: key),
               let envelope = try? JSONCoding.decoder.decode(KeyEnvelope.self, from: Data(stored)) {
                do { return (Stored(key: key, envelope: envelope), try envelope.unwrap(backupId: backupId, source: source)) } catch {
                    throw DRKitError.wrap(error)
                }
            }
        }
        let envelopes = try all(backupId: backupId, inManifest: inManifest, in: repository)
        var firstError: Error?
        for stored in envelopes where stored.envelope.kek.kind == source.kind {
            do { return (stored, try stored.envelope.unwrap(backupId: backupId, source: source)) } catch {
                if firstError == nil { firstError = error }
            }
        }
        if envelopes.count == 1, let firstError { throw DRKitError.wrap(firstError) }
        guard !envelopes.isEmpty else {
            let sealed = try AgeEnvelopes.all(backupId: backupId, in: repository)
            guard sealed.isEmpty else {
                throw DRKitError(.integrity, "wrong key: backup \(backupId) is sealed to age recipients only (\(sealed.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))): open it with --identity")
            }
            throw DRKitError(.integrity, "backup \(backupId) is encrypted but has no key envelope (\(backupId)/\(folder)/ is empty): it cannot be opened")
        }
        throw DRKitError(.integrity, "wrong key: no key envelope of backup \(backupId) opens with the \(source.kind) given; it opens with the \(envelopes.map { "\($0.envelope.kek.kind) \($0.envelope.kek.fingerprint)" }.joined(separator: " or "))")
    }
}

extension KeySource {
    /// "key" or "passphrase", as envelopes record it.
    var kind: String {
        switch self {
        case .key: return "key"
        case .passphrase: return "passphrase"
        }
    }
}
