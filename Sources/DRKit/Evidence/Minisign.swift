import Foundation
import Common

/// minisign's key and signature files (https://jedisct1.github.io/minisign/), so `minisign -V`
/// checks what drkit signs and drkit signs with keys `minisign -G -W` made. Signatures are the
/// prehashed kind minisign writes by default ("ED": Ed25519 over BLAKE2b-512 of the file), each with
/// a trusted comment signed together with the signature.
public enum Minisign {
    static let signatureAlgorithm = Array("Ed".utf8)
    static let prehashedAlgorithm = Array("ED".utf8)
    static let checksumAlgorithm = Array("B2".utf8)
    static let untrusted = "untrusted comment: "
    static let trusted = "trusted comment: "

    public struct PublicKey: Equatable, Sendable {
        public var keyId: [UInt8]
        public var key: [UInt8]

        /// As minisign prints it: the 8-byte id as a little-endian number, in hex.
        public var keyIdText: String { Minisign.keyIdText(keyId) }
        public var base64: String { Data(Minisign.signatureAlgorithm + keyId + key).base64EncodedString() }
        public var fileText: String { "\(Minisign.untrusted)minisign public key \(keyIdText)\n\(base64)\n" }

        /// A public key file, or its base64 line alone (`minisign -P`).
        public static func parse(_ text: String) throws -> PublicKey {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard let line = lines.first(where: { !$0.hasPrefix(Minisign.untrusted) }),
                  let bytes = Data(base64Encoded: line).map({ [UInt8]($0) }), bytes.count == 42,
                  Array(bytes[0..<2]) == Minisign.signatureAlgorithm else {
                throw DRKitError(.usage, "not a minisign public key (a file `minisign -G` or `drkit key generate --type signing` wrote, or its RW... line)")
            }
            return PublicKey(keyId: Array(bytes[2..<10]), key: Array(bytes[10...]))
        }
    }

    public struct SecretKey: Sendable {
        public var keyId: [UInt8]
        public var seed: [UInt8]
        public var publicKey: PublicKey

        public static func generate() throws -> SecretKey {
            let seed = SecureRandom.bytes(Ed25519.seedSize)
            let keyId = SecureRandom.bytes(8)
            return SecretKey(keyId: keyId, seed: seed, publicKey: PublicKey(keyId: keyId, key: try Ed25519.publicKey(seed: seed)))
        }

        /// An unencrypted secret key file, as `minisign -G -W` writes it.
        public var fileText: String {
            let secret = seed + publicKey.key
            let checksum = BLAKE2b.hash(Minisign.signatureAlgorithm + keyId + secret, length: 32)
            let body = Minisign.signatureAlgorithm + [0, 0] + Minisign.checksumAlgorithm
                + [UInt8](repeating: 0, count: 32 + 8 + 8) + keyId + secret + checksum
            return "\(Minisign.untrusted)minisign secret key \(publicKey.keyIdText) (unencrypted)\n\(Data(body).base64EncodedString())\n"
        }

        public static func parse(_ text: String) throws -> SecretKey {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard let line = lines.first(where: { !$0.hasPrefix(Minisign.untrusted) }),
                  let bytes = Data(base64Encoded: line).map({ [UInt8]($0) }), bytes.count == 158,
                  Array(bytes[0..<2]) == Minisign.signatureAlgorithm, Array(bytes[4..<6]) == Minisign.checksumAlgorithm else {
                throw DRKitError(.usage, "not a minisign secret key (a file `minisign -G -W` or `drkit key generate --type signing` wrote)")
            }
            guard bytes[2] == 0 && bytes[3] == 0 else {
                throw DRKitError(.usage, "the minisign secret key is protected by a password; drkit signs unattended and takes only an unencrypted one (`minisign -C -W` removes the password; keep the file private)")
            }
            let keyId = Array(bytes[54..<62])
            let secret = Array(bytes[62..<126])
            // Not the stored checksum: minisign 0.11 does not check it on unencrypted keys, and those it
            // writes (-G -W) do not carry the one its encrypted keys do. The public half must derive from the seed.
            let seed = Array(secret[0..<32])
            let derived = try Ed25519.publicKey(seed: seed)
            guard derived == Array(secret[32...]) else { throw DRKitError(.usage, "the minisign secret key is inconsistent: the file is damaged") }
            return SecretKey(keyId: keyId, seed: seed, publicKey: PublicKey(keyId: keyId, key: derived))
        }

        /// A `.minisig` file for `message`: the signature of its BLAKE2b-512 hash, and the trusted
        /// comment signed with that signature. Comments are one line.
        public func sign(_ message: [UInt8], trustedComment: String, untrustedComment: String = "signature from drkit secret key") throws -> String {
            let comment = trustedComment.replacingOccurrences(of: "\n", with: " ")
            let signature = try Ed25519.sign(BLAKE2b.hash(message), seed: seed)
            let global = try Ed25519.sign(signature + Array(comment.utf8), seed: seed)
            return "\(Minisign.untrusted)\(untrustedComment.replacingOccurrences(of: "\n", with: " "))\n"
                + Data(Minisign.prehashedAlgorithm + keyId + signature).base64EncodedString() + "\n"
                + "\(Minisign.trusted)\(comment)\n" + Data(global).base64EncodedString() + "\n"
        }
    }

    public enum Verification: Equatable, Sendable {
        case valid(trustedComment: String)
        case invalid(String)
    }

    /// Checks a `.minisig` file's text against `message` and `key` as `minisign -V` does: the key id,
    /// the signature (prehashed or legacy), then the trusted comment's signature.
    public static func verify(signatureFile text: String, message: [UInt8], key: PublicKey) -> Verification {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        guard lines.count >= 4, lines[0].hasPrefix(untrusted), lines[2].hasPrefix(trusted),
              let body = Data(base64Encoded: lines[1]).map({ [UInt8]($0) }), body.count == 74,
              let global = Data(base64Encoded: lines[3]).map({ [UInt8]($0) }), global.count == 64 else {
            return .invalid("not a minisign signature file")
        }
        let algorithm = Array(body[0..<2])
        let keyId = Array(body[2..<10])
        let signature = Array(body[10...])
        guard keyId == key.keyId else {
            return .invalid("signed by key \(keyIdText(keyId)), not by the given key \(key.keyIdText)")
        }
        let signed: [UInt8]
        switch algorithm {
        case prehashedAlgorithm: signed = BLAKE2b.hash(message)
        case signatureAlgorithm: signed = message
        default: return .invalid("unknown signature algorithm")
        }
        guard Ed25519.verify(signature, of: signed, publicKey: key.key) else {
            return .invalid("the signature does not match the file (it was changed after signing)")
        }
        let comment = String(lines[2].dropFirst(trusted.count))
        guard Ed25519.verify(global, of: signature + Array(comment.utf8), publicKey: key.key) else {
            return .invalid("the trusted comment was changed after signing")
        }
        return .valid(trustedComment: comment)
    }

    static func keyIdText(_ keyId: [UInt8]) -> String { Hex.encode(keyId.reversed()).uppercased() }
}
