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

    public var hexDigest: String { Hex.encode(digest) }
}
