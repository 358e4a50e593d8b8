import Common

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
