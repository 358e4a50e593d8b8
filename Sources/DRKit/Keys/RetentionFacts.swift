import Archive
import ObjectStorage
import Foundation
import Common

/// What retention decides on, signed by the backup host's signing key: `<backup-id>/keys/retention.facts` (JSON)
/// and its `.minisig`. A host that holds only age recipients cannot open its own manifests, so `forget`
/// checks these instead (with the public key), and still never trusts a plaintext summary: storage
/// credentials alone cannot make a backup look old. The facts name the manifest's SHA-256, so they
/// cannot be moved to another backup or outlive an edited manifest.
public struct RetentionFacts: Codable, Sendable, Equatable {
    public var backupId: String
    public var database: String
    public var series: String
    public var snapshotTime: Date
    public var streamPosition: String?
    public var partial: Bool
    public var manifestSHA256: String

    static let name = "retention.facts"
    static func key(_ backupId: String) -> String { "\(backupId)/\(KeyEnvelopes.folder)/\(name)" }

    init(manifest: BackupManifest, manifestBytes: [UInt8]) {
        backupId = manifest.backupId
        database = manifest.source.database
        series = RetentionPolicy.series(database: manifest.source.database, selection: manifest.selection?.pgDumpArguments)
        snapshotTime = manifest.snapshotTime
        streamPosition = manifest.streamPosition
        partial = manifest.selection != nil
        manifestSHA256 = Hex.encode(SHA256.hash(manifestBytes))
    }

    /// Written before the manifest, so every committed backup that was signed has them.
    static func write(_ facts: RetentionFacts, key: Minisign.SecretKey, in repository: Repository) throws {
        do {
            let bytes = [UInt8](try JSONCoding.encoder.encode(facts))
            let signature = try key.sign(bytes, trustedComment: "drkit retention facts \(facts.backupId) manifest:\(facts.manifestSHA256)")
            try repository.putBackupObject(key: Self.key(facts.backupId), bytes: bytes)
            try repository.putBackupObject(key: Self.key(facts.backupId) + ".minisig", bytes: Array(signature.utf8))
        } catch { throw DRKitError.wrap(error, "writing the signed retention facts of \(facts.backupId)") }
    }

    /// The facts of `file`, checked against `publicKey` and the stored manifest; exit 5 when missing,
    /// unsigned by that key, or not this manifest's.
    public static func verified(_ file: ManifestFile, publicKey: Minisign.PublicKey, in repository: Repository) throws -> RetentionFacts {
        let backupId = file.summary.backupId
        let bytes: [UInt8], signature: [UInt8], manifest: [UInt8]
        do {
            bytes = try repository.store.get(key: key(backupId))
            signature = try repository.store.get(key: key(backupId) + ".minisig")
            manifest = try repository.store.get(key: "\(backupId)/\(ManifestFile.objectName)")
        } catch let e as StorageError where e.kind == .notFound {
            throw DRKitError(.integrity, "backup \(backupId) carries no signed retention facts (made without --signing-key): give a key or identity that opens it")
        } catch { throw DRKitError.wrap(error, "reading the retention facts of \(backupId)") }
        if case .invalid(let why) = Minisign.verify(signatureFile: String(decoding: signature, as: UTF8.self), message: bytes, key: publicKey) {
            throw DRKitError(.integrity, "the retention facts of backup \(backupId) are not authentic: \(why)")
        }
        guard let facts = try? JSONCoding.decoder.decode(RetentionFacts.self, from: Data(bytes)),
              facts.backupId == backupId, facts.manifestSHA256 == Hex.encode(SHA256.hash(manifest)) else {
            throw DRKitError(.integrity, "the retention facts of backup \(backupId) do not belong to its manifest (moved or the manifest was replaced)")
        }
        return facts
    }
}
