import Archive
import ObjectStorage
import Foundation
import Common

/// A backup's data key for age recipients: `<backup-id>/keys/age-<fingerprint>.age`, a standard age
/// file (X25519 stanzas, one per recipient) whose plaintext is the 32-byte data key, so
/// `age -d -i identity.txt` recovers it by hand. The fingerprint names the recipient set, so a backup
/// can carry envelopes for several sets (a rotation) beside symmetric ones (`<fingerprint>.json`).
/// The host that writes it needs only the public keys; nothing it keeps opens it again.
public enum AgeEnvelopes {
    static let prefix = "age-"
    static let suffix = ".age"

    public static func fingerprint(_ recipients: [Age.Recipient]) -> String {
        let set = Set(recipients.map(\.text)).sorted().joined(separator: "\n")
        return prefix + Hex.encode(SHA256.hash(Array("drkit-age-recipients-v1\n\(set)".utf8)).prefix(16))
    }

    public static func key(backupId: String, recipients: [Age.Recipient]) -> String {
        "\(backupId)/\(KeyEnvelopes.folder)/\(fingerprint(recipients))\(suffix)"
    }

    /// Stores the envelope unless one for the same recipients is already there (a repeated rotation).
    public static func write(dataKey: [UInt8], recipients: [Age.Recipient], backupId: String, in repository: Repository) throws {
        let key = key(backupId: backupId, recipients: recipients)
        do {
            if try repository.store.list(prefix: key).contains(where: { $0.key == key }) { return }
            try repository.putBackupObject(key: key, bytes: try Age.encrypt(dataKey, to: recipients))
        } catch { throw DRKitError.wrap(error, "writing the age key envelope of \(backupId)") }
    }

    /// Every age envelope's object key.
    public static func all(backupId: String, in repository: Repository) throws -> [String] {
        do {
            return try repository.store.list(prefix: "\(backupId)/\(KeyEnvelopes.folder)/\(prefix)").map(\.key).filter { $0.hasSuffix(suffix) }
        } catch { throw DRKitError.wrap(error, "reading the key envelopes of \(backupId)") }
    }

    /// The data key from the first age envelope one of `identities` opens; nil when none does.
    public static func open(backupId: String, identities: [Age.Identity], in repository: Repository) throws -> [UInt8]? {
        try openEnvelope(backupId: backupId, identities: identities, in: repository)?.dataKey
    }

    /// ...and which envelope object it was.
    static func openEnvelope(backupId: String, identities: [Age.Identity], in repository: Repository) throws -> (key: String, dataKey: [UInt8])? {
        for key in try all(backupId: backupId, in: repository) {
            let bytes: [UInt8]
            do { bytes = try repository.store.get(key: key) } catch let e as StorageError where e.kind == .notFound { continue } catch {
                throw DRKitError.wrap(error, "reading \(key)")
            }
            do {
                guard let dataKey = try Age.decrypt(bytes, identities: identities) else { continue }
                guard dataKey.count == 32 else { throw DRKitError(.integrity, "age key envelope \(key) does not hold a 32-byte data key") }
                return (key, dataKey)
            } catch let error as DRKitError { throw error } catch {
                throw DRKitError(.integrity, "age key envelope \(key) is damaged: \(error)")
            }
        }
        return nil
    }
}
