import Common

/// Splits a pack's plain stream into its tables' slices. Each slice's bytes go to the sink `open`
/// returns for it (nil: the slice is read and checked but not kept), which is finished as soon as the
/// slice ends; each slice's rows are counted and must match the manifest. Empty slices open nothing.
public final class PackSliceSplitter: ByteSink {
    private let slices: [PackSlice]
    private let open: (Int) throws -> ByteSink?
    private var index = 0
    private var remaining: Int64
    private var current: ByteSink?
    private var isOpen = false
    private var lines: Int64 = 0

    public init(slices: [PackSlice], open: @escaping (Int) throws -> ByteSink?) {
        self.slices = slices
        self.open = open
        remaining = slices.first?.plainBytes ?? 0
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            try skipEmptySlices()
            guard index < slices.count else {
                throw ArchiveError(.malformed, "the pack holds more bytes than its \(slices.count) tables' slices")
            }
            if !isOpen {
                current = try open(index)
                isOpen = true
            }
            let count = Int(min(remaining, Int64(bytes.count - offset)))
            let part = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
            lines += Int64(LineCountingSink.countNewlines(part))
            try current?.write(part)
            remaining -= Int64(count)
            offset += count
            if remaining == 0 { try endSlice() }
        }
    }

    public func finish() throws {
        try skipEmptySlices()
        guard index == slices.count else {
            let slice = slices[index]
            throw ArchiveError(.truncated, "the pack ends inside the slice of \(slice.schema).\(slice.name)")
        }
    }

    private func skipEmptySlices() throws {
        while index < slices.count && slices[index].plainBytes == 0 { try endSlice() }
    }

    private func endSlice() throws {
        let slice = slices[index]
        guard lines == slice.rows else {
            throw ArchiveError(.malformed, "the slice of \(slice.schema).\(slice.name) holds \(lines) rows, the manifest says \(slice.rows)")
        }
        try current?.finish()
        (current, isOpen, lines) = (nil, false, 0)
        index += 1
        if index < slices.count { remaining = slices[index].plainBytes }
    }
}
