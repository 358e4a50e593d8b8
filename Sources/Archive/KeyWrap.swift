import Common
import Foundation

/// Where the key-encryption key (KEK) comes from. It never leaves memory and is never printed.
public enum KeySource: Sendable {
    /// A raw 32-byte key (key file or `DRKIT_KEY`).
    case key([UInt8])
    /// A passphrase, stretched per backup with scrypt.
    case passphrase(String)

    /// Reads a key file's contents: 32 raw bytes, or 32 bytes in base64 or hex text.
    public static func parseKey(_ contents: [UInt8]) throws -> [UInt8] {
        if contents.count == 32 { return contents }
        let text = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.count == 64, let bytes = Hex.decode(text) { return bytes }
        if let bytes = Data(base64Encoded: text), bytes.count == 32 { return [UInt8](bytes) }
        throw ArchiveError(.malformed, "a key must be 32 bytes: raw, 64 hex digits, or base64 (as `drkit key generate` writes)")
    }

    public static func generateKeyText() -> String {
        Data(SecureRandom.bytes(32)).base64EncodedString() + "\n"
    }
}

/// How a backup's random data key is protected: wrapped with AES-256-GCM under the KEK, bound to
/// the backup id so a wrapped key cannot be moved to another backup's manifest.
public struct KeyEnvelope: Codable, Equatable, Sendable {
    public struct KEK: Codable, Equatable, Sendable {
        /// "key" or "passphrase"
        public var kind: String
        /// SHA-256-based fingerprint of the KEK; identifies which key a backup needs, reveals nothing of it.
        public var fingerprint: String
        public var scrypt: ScryptParameters?
    }

    public var algorithm: String
    public var segmentSize: Int
    public var kek: KEK
    public var wrappedDataKey: String

    public static let algorithmName = "AES-256-GCM-STREAM-HKDF-SHA256"

    public static func create(backupId: String, source: KeySource) throws -> (KeyEnvelope, dataKey: [UInt8]) {
        let dataKey = SecureRandom.bytes(32)
        let envelope = try wrap(dataKey: dataKey, backupId: backupId, source: source)
        return (envelope, dataKey)
    }

    /// A new envelope for `dataKey` under `source` (a rotation wraps a data key it has already opened).
    public static func wrap(dataKey: [UInt8], backupId: String, source: KeySource) throws -> KeyEnvelope {
        let (kekBytes, info) = try derive(source: source, existing: nil)
        let nonce = SecureRandom.bytes(AESGCM.nonceSize)
        let sealed = try AESGCM(key: kekBytes).seal(dataKey, nonce: nonce, aad: aad(backupId))
        return KeyEnvelope(algorithm: algorithmName, segmentSize: StreamingAEAD.defaultSegmentSize,
                           kek: info, wrappedDataKey: Data(nonce + sealed).base64EncodedString())
    }

    public func unwrap(backupId: String, source: KeySource) throws -> [UInt8] {
        let (kekBytes, info) = try KeyEnvelope.derive(source: source, existing: kek)
        guard info.fingerprint == kek.fingerprint else {
            throw ArchiveError(.wrongKey, "wrong key: backup \(backupId) needs the \(kek.kind) with fingerprint \(kek.fingerprint), but the one given has fingerprint \(info.fingerprint)")
        }
        guard let blob = Data(base64Encoded: wrappedDataKey).map({ [UInt8]($0) }), blob.count == 12 + 32 + 16 else {
            throw ArchiveError(.malformed, "manifest of \(backupId) has a malformed wrapped data key")
        }
        guard let dataKey = try AESGCM(key: kekBytes).open(Array(blob[12...]), nonce: Array(blob[0..<12]),
                                                             aad: KeyEnvelope.aad(backupId)) else {
            throw ArchiveError(.wrongKey, "wrong key: the data key of backup \(backupId) does not unwrap (manifest altered, or another key)")
        }
        return dataKey
    }

    /// The same data key under a new KEK; data objects stay as they are.
    public func rewrapped(backupId: String, from old: KeySource, to new: KeySource) throws -> KeyEnvelope {
        let dataKey = try unwrap(backupId: backupId, source: old)
        var envelope = try KeyEnvelope.wrap(dataKey: dataKey, backupId: backupId, source: new)
        envelope.segmentSize = segmentSize
        return envelope
    }

    public static func fingerprint(ofKey key: [UInt8]) -> String {
        Hex.encode(SHA256.hash(Array("drkit-kek-fingerprint-v1".utf8) + key).prefix(16))
    }

    private static func aad(_ backupId: String) -> [UInt8] { Array("drkit-dek-v1|\(backupId)".utf8) }

    private static func derive(source: KeySource, existing: KEK?) throws -> ([UInt8], KEK) {
        switch source {
        case .key(let bytes):
            guard bytes.count == 32 else { throw ArchiveError(.malformed, "a key must be 32 bytes") }
            return (bytes, KEK(kind: "key", fingerprint: fingerprint(ofKey: bytes), scrypt: nil))
        case .passphrase(let passphrase):
            let parameters = existing?.scrypt ?? ScryptParameters()
            let derived = try parameters.deriveKey(passphrase: passphrase)
            return (derived, KEK(kind: "passphrase", fingerprint: fingerprint(ofKey: derived), scrypt: parameters))
        }
    }
}
