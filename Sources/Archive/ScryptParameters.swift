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

    /// What a reader accepts. The parameters come from the manifest, which anyone who can write to the
    /// repository can edit: unbounded, they are a way to crash drkit or take all memory. The default
    /// (n = 2^15, r = 8, p = 1: 32 MiB, ~0.1 s) sits well inside.
    public static let bounds = (n: UInt64(1 << 10)...UInt64(1 << 20), r: UInt64(1)...UInt64(16), p: UInt64(1)...UInt64(4),
                                memoryBytes: UInt64(256 << 20), saltBytes: 16...64)

    /// Throws `.malformed` (exit 5) at once for parameters outside `bounds`.
    public func validate() throws {
        let b = ScryptParameters.bounds
        guard b.n.contains(n), n.nonzeroBitCount == 1 else {
            throw ArchiveError(.malformed, "scrypt n=\(n) is outside 2^10...2^20 or not a power of two: the manifest was altered or is not drkit's")
        }
        guard b.r.contains(r), b.p.contains(p) else {
            throw ArchiveError(.malformed, "scrypt r=\(r), p=\(p) are outside r 1...16, p 1...4: the manifest was altered or is not drkit's")
        }
        guard 128 * n * r <= b.memoryBytes else {
            throw ArchiveError(.malformed, "scrypt n=\(n), r=\(r) would need \(128 * n * r >> 20) MiB, more than the 256 MiB allowed: the manifest was altered")
        }
        guard let saltBytes = Hex.decode(salt), b.saltBytes.contains(saltBytes.count) else {
            throw ArchiveError(.malformed, "scrypt salt is not 16 to 64 bytes of hex: the manifest was altered")
        }
    }

    public func deriveKey(passphrase: String) throws -> [UInt8] {
        try validate()
        guard let saltBytes = Hex.decode(salt) else { throw ArchiveError(.malformed, "scrypt salt is not hex") }
        do {
            return try Scrypt.deriveKey(passphrase: Array(passphrase.utf8), salt: saltBytes, n: n, r: r, p: p)
        } catch let error as CryptoError {
            throw ArchiveError(.library, error.message)
        }
    }
}
