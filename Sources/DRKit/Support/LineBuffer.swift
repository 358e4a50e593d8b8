/// Cuts a byte stream into lines as it arrives, whatever the sizes of its chunks: for readers of
/// pg_dump's output that judge it line by line while it streams.
struct LineBuffer {
    private var pending: [UInt8] = []

    /// The lines `bytes` completes, each with its `\n`.
    mutating func lines(completedBy bytes: UnsafeRawBufferPointer) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = bytes.startIndex
        while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
            pending.append(contentsOf: bytes[start...newline])
            lines.append(pending)
            pending.removeAll(keepingCapacity: true)
            start = newline + 1
        }
        pending.append(contentsOf: bytes[start...])
        return lines
    }

    /// The last line when the stream did not end with `\n`; nil when it did.
    mutating func rest() -> [UInt8]? {
        defer { pending = [] }
        return pending.isEmpty ? nil : pending
    }
}
