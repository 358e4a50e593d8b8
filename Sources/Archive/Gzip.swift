internal import CZlib
internal import CShims
internal import CLibDeflate

/// Compresses everything written as a series of gzip (RFC 1952) members of `blockSize` input bytes
/// each. Concatenated members are one valid gzip stream (`gunzip` reads it whole), and whole-block
/// compression lets libdeflate run at about 2.5x zlib's speed with a smaller output.
public final class GzipCompressor: ByteSink {
    public static let defaultBlockSize = 1 << 20
    private let compressor: OpaquePointer
    private let next: ByteSink
    private let blockSize: Int
    private var block: [UInt8] = []
    private var output: [UInt8]
    private var wroteMember = false
    private var finished = false

    public init(level: Int, next: ByteSink, blockSize: Int = GzipCompressor.defaultBlockSize) throws {
        guard (0...9).contains(level) else { throw ArchiveError(.library, "compression level must be 0...9, got \(level)") }
        guard let compressor = libdeflate_alloc_compressor(Int32(level)) else {
            throw ArchiveError(.library, "libdeflate could not allocate a compressor")
        }
        self.compressor = compressor
        self.next = next
        self.blockSize = blockSize
        self.output = [UInt8](repeating: 0, count: libdeflate_gzip_compress_bound(compressor, blockSize))
        block.reserveCapacity(blockSize)
    }

    deinit { libdeflate_free_compressor(compressor) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var input = bytes
        while !input.isEmpty {
            let take = min(blockSize - block.count, input.count)
            block.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0..<take]))
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            if block.count == blockSize { try compressBlock() }
        }
    }

    public func finish() throws {
        guard !finished else { return }
        finished = true
        // An empty input still becomes one (empty) member, so readers see a valid gzip stream.
        if !block.isEmpty || !wroteMember { try compressBlock() }
        try next.finish()
    }

    private func compressBlock() throws {
        let capacity = output.count
        let produced = block.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in
                libdeflate_gzip_compress(compressor, input.baseAddress, input.count, out.baseAddress, capacity)
            }
        }
        guard produced > 0 else { throw ArchiveError(.library, "libdeflate failed to compress a block") }
        block.removeAll(keepingCapacity: true)
        wroteMember = true
        try output.withUnsafeBytes { try next.write(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
    }
}

/// Decompresses a gzip stream, including several concatenated members, and forwards the plain bytes.
public final class GzipDecompressor: ByteSink {
    private var stream = z_stream()
    private let next: ByteSink
    private var output: [UInt8]
    private var atMemberEnd = true
    private var sawInput = false

    public init(next: ByteSink, outputBufferSize: Int = 256 * 1024) throws {
        self.next = next
        self.output = [UInt8](repeating: 0, count: outputBufferSize)
        guard drkit_inflate_init_gzip(&stream) == Z_OK else {
            throw ArchiveError(.library, "zlib could not start a gzip reader")
        }
    }

    deinit { inflateEnd(&stream) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        sawInput = true
        stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        let capacity = output.count
        while stream.avail_in > 0 {
            if atMemberEnd {
                // A new member begins (the first one, or one concatenated after the previous).
                inflateReset(&stream)
                atMemberEnd = false
            }
            let (status, produced): (Int32, Int) = output.withUnsafeMutableBufferPointer { out in
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(capacity)
                let status = inflate(&stream, Z_NO_FLUSH)
                return (status, capacity - Int(stream.avail_out))
            }
            if produced > 0 {
                try output.withUnsafeBytes { try next.write(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            }
            switch status {
            case Z_STREAM_END: atMemberEnd = true
            case Z_OK, Z_BUF_ERROR: if produced == 0 && stream.avail_in == 0 { return }
            default:
                throw ArchiveError(.malformed, "gzip data is corrupt (zlib \(status))")
            }
        }
    }

    public func finish() throws {
        guard atMemberEnd, sawInput else {
            throw ArchiveError(.truncated, sawInput ? "gzip stream ends before its end marker" : "gzip stream is empty")
        }
        try next.finish()
    }
}

public enum Gzip {
    public static func compress(_ bytes: [UInt8], level: Int = 6) throws -> [UInt8] {
        let sink = BufferSink()
        let gz = try GzipCompressor(level: level, next: sink)
        try gz.write(bytes)
        try gz.finish()
        return sink.bytes
    }

    public static func decompress(_ bytes: [UInt8]) throws -> [UInt8] {
        let sink = BufferSink()
        let gz = try GzipDecompressor(next: sink)
        try gz.write(bytes)
        try gz.finish()
        return sink.bytes
    }
}
