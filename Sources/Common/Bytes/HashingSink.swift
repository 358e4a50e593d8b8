/// Passes bytes through while computing their SHA-256 and length.
public final class HashingSink: ByteSink {
    private let next: ByteSink?
    private let hasher = SHA256()
    public private(set) var byteCount: Int64 = 0
    public private(set) var digest: [UInt8] = []

    public init(next: ByteSink?) { self.next = next }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        hasher.update(bytes)
        byteCount += Int64(bytes.count)
        try next?.write(bytes)
    }

    public func finish() throws {
        digest = hasher.finalize()
        try next?.finish()
    }

    /// Ends the hash without finishing the next sink, so a caller can check the digest before it
    /// commits what it wrote (and abort it instead). Call instead of `finish`, not after it.
    public func finishHashing() -> [UInt8] {
        digest = hasher.finalize()
        return digest
    }

    public var hexDigest: String { Hex.encode(digest) }
}
