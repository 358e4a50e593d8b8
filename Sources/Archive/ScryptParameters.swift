import Common

/// Parameters of scrypt as stored in a manifest; defaults follow the interactive-login profile.
public struct ScryptParameters: Codable, Equatable, Sendable {
    public var n: UInt64
    public var r: UInt64
    public var p: UInt64
    public var salt: String

    public init(n: UInt64 = 1 << 15, r: UInt64 = 8, p: UInt64 = 1, salt: [UInt8] = SecureRandom.bytes(16)) {
        self.n = n
        self.r = r
        self.p = p
        self.salt = Hex.encode(salt)
    }

    public func deriveKey(passphrase: String) throws -> [UInt8] {
        guard let saltBytes = Hex.decode(salt) else { throw ArchiveError(.malformed, "scrypt salt is not hex") }
        do {
            return try Scrypt.deriveKey(passphrase: Array(passphrase.utf8), salt: saltBytes, n: n, r: r, p: p)
        } catch let error as CryptoError {
            throw ArchiveError(.library, error.message)
        }
    }
}
