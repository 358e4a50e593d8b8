/// A stage of a byte pipeline. Compression, encryption, hashing and uploads are all sinks,
/// stacked on one stream: each forwards what it produces to the next one.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Flushes what is buffered and finishes the downstream sink. Called once, after the last write.
    func finish() throws
}

extension ByteSink {
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }
}

/// Collects everything written into memory; for small objects such as manifests and DDL.
public final class BufferSink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    public private(set) var finished = false
    public init() {}
    public func write(_ bytes: UnsafeRawBufferPointer) throws { self.bytes.append(contentsOf: bytes) }
    public func finish() throws { finished = true }
}

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

/// Counts COPY text rows (every row ends in a newline; embedded newlines are escaped in COPY text).
public final class LineCountingSink: ByteSink {
    private let next: ByteSink?
    public private(set) var lines: Int64 = 0
    public private(set) var byteCount: Int64 = 0
    public private(set) var endsWithNewline = true

    public init(next: ByteSink?) { self.next = next }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        lines += Int64(LineCountingSink.countNewlines(bytes))
        byteCount += Int64(bytes.count)
        endsWithNewline = bytes[bytes.count - 1] == 0x0A
        try next?.write(bytes)
    }

    public func finish() throws { try next?.finish() }

    /// Counts 0x0A bytes eight at a time: a word XOR 0x0A0A... has a zero byte exactly where a newline
    /// was, and the expression below sets the high bit of each zero byte, with no false positives.
    static func countNewlines(_ bytes: UnsafeRawBufferPointer) -> Int {
        let newlines: UInt64 = 0x0A0A_0A0A_0A0A_0A0A
        let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        var count = 0
        var index = 0
        let words = bytes.count / 8
        for w in 0..<words {
            let x = bytes.loadUnaligned(fromByteOffset: w * 8, as: UInt64.self) ^ newlines
            let zeroBytes = ~(((x & low7) &+ low7) | x | low7)
            count += zeroBytes.nonzeroBitCount
        }
        index = words * 8
        while index < bytes.count {
            if bytes[index] == 0x0A { count += 1 }
            index += 1
        }
        return count
    }
}

public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}
