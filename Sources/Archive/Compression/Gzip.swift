import Common
internal import CZlib
internal import CShims
internal import CLibDeflate

/// drkit's gzip framing. Every member is a standard RFC 1952 member whose FEXTRA field carries one
/// subfield, "DK", holding the member's total length (the idea of BGZF, with 32-bit lengths):
///
///     1f 8b 08 04 | mtime 0 (4) | xfl 0 | os ff | xlen 8 (2, LE) | 'D' 'K' | 4 (2, LE) | member length (4, LE)
///     raw deflate data | CRC-32 (4, LE) | input size (4, LE)
///
/// `gunzip` ignores the extra field and reads the concatenated members as one stream; drkit's reader
/// uses the length to decompress each member whole with libdeflate, which is several times faster
/// than streaming inflate. Streams without the subfield (written by other tools) are read with zlib.
enum GzipFraming {
    static let headerSize = 18
    static let trailerSize = 8
    static let maxMemberSize = 64 << 20

    static func header(memberLength: Int) -> [UInt8] {
        let n = UInt32(memberLength)
        return [0x1F, 0x8B, 0x08, 0x04, 0, 0, 0, 0, 0, 0xFF, 8, 0, 0x44, 0x4B, 4, 0,
                UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)]
    }

    /// The member length when `bytes` starts with a drkit-framed header, nil for any other gzip header.
    static func memberLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= headerSize + 2 else { return nil }
        guard bytes[0] == 0x1F, bytes[1] == 0x8B, bytes[2] == 0x08, bytes[3] == 0x04,
              bytes[10] == 8, bytes[11] == 0, bytes[12] == 0x44, bytes[13] == 0x4B, bytes[14] == 4, bytes[15] == 0 else { return nil }
        return Int(bytes[16]) | Int(bytes[17]) << 8 | Int(bytes[18]) << 16 | Int(bytes[19]) << 24
    }

    static func littleEndian32(_ value: UInt32) -> [UInt8] {
        [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
    }
}

/// Compresses everything written as drkit-framed gzip members of `blockSize` input bytes each.
public final class GzipCompressor: ByteSink {
    public static let defaultBlockSize = 1 << 20
    private let compressor: OpaquePointer
    private let next: ByteSink
    private let blockSize: Int
    private var block: [UInt8] = []
    private var member: [UInt8]
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
        let bound = libdeflate_deflate_compress_bound(compressor, blockSize)
        self.member = [UInt8](repeating: 0, count: GzipFraming.headerSize + 2 + bound + GzipFraming.trailerSize)
        block.reserveCapacity(blockSize)
    }

    deinit { libdeflate_free_compressor(compressor) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var input = bytes
        while !input.isEmpty {
            let take = min(blockSize - block.count, input.count)
            block.appendBytes(UnsafeRawBufferPointer(rebasing: input[0..<take]))
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
        let start = GzipFraming.headerSize + 2
        let capacity = member.count - start - GzipFraming.trailerSize
        let (compressed, crc): (Int, UInt32) = block.withUnsafeBytes { input in
            member.withUnsafeMutableBytes { out in
                let n = libdeflate_deflate_compress(compressor, input.baseAddress, input.count, out.baseAddress! + start, capacity)
                return (n, UInt32(libdeflate_crc32(0, input.baseAddress, input.count)))
            }
        }
        guard compressed > 0 else { throw ArchiveError(.library, "libdeflate failed to compress a block") }
        let total = start + compressed + GzipFraming.trailerSize
        member.replaceSubrange(0..<start, with: GzipFraming.header(memberLength: total))
        member.replaceSubrange((start + compressed)..<total,
                               with: GzipFraming.littleEndian32(crc) + GzipFraming.littleEndian32(UInt32(truncatingIfNeeded: block.count)))
        block.removeAll(keepingCapacity: true)
        wroteMember = true
        try member.withUnsafeBytes { try next.write(UnsafeRawBufferPointer(rebasing: $0[0..<total])) }
    }
}

/// Decompresses a gzip stream of one or more members and forwards the plain bytes. drkit-framed
/// members are decompressed whole with libdeflate; anything else goes through zlib's streaming inflate.
public final class GzipDecompressor: ByteSink {
    private let next: ByteSink
    private let decompressor: OpaquePointer
    private var pending: [UInt8] = []
    private var plain: [UInt8] = []
    private var streaming: ZlibInflater?
    private var sawMember = false

    public init(next: ByteSink) throws {
        self.next = next
        guard let decompressor = libdeflate_alloc_decompressor() else {
            throw ArchiveError(.library, "libdeflate could not allocate a decompressor")
        }
        self.decompressor = decompressor
    }

    deinit { libdeflate_free_decompressor(decompressor) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let streaming { return try streaming.write(bytes) }
        pending.appendBytes(bytes)
        var consumed = 0
        while pending.count - consumed >= GzipFraming.headerSize + 2 {
            let length: Int? = pending.withUnsafeBytes { GzipFraming.memberLength(UnsafeRawBufferPointer(rebasing: $0[consumed...])) }
            guard let length else {
                // Not drkit's framing (another tool wrote this): stream the rest through zlib.
                let inflater = try ZlibInflater(next: next)
                streaming = inflater
                let rest = Array(pending[consumed...])
                pending = []
                try rest.withUnsafeBytes { try inflater.write($0) }
                return
            }
            guard length >= GzipFraming.headerSize + 2 + GzipFraming.trailerSize, length <= GzipFraming.maxMemberSize else {
                throw ArchiveError(.malformed, "gzip member has an invalid length field (\(length))")
            }
            guard pending.count - consumed >= length else { break }
            try decompressMember(at: consumed, length: length)
            consumed += length
        }
        if consumed > 0 { pending.removeFirst(consumed) }
    }

    private func decompressMember(at offset: Int, length: Int) throws {
        let dataStart = offset + GzipFraming.headerSize + 2
        let dataEnd = offset + length - GzipFraming.trailerSize
        let trailer = Array(pending[dataEnd..<(offset + length)])
        let expectedCRC = UInt32(trailer[0]) | UInt32(trailer[1]) << 8 | UInt32(trailer[2]) << 16 | UInt32(trailer[3]) << 24
        let size = Int(trailer[4]) | Int(trailer[5]) << 8 | Int(trailer[6]) << 16 | Int(trailer[7]) << 24
        guard size <= GzipFraming.maxMemberSize else { throw ArchiveError(.malformed, "gzip member claims \(size) bytes") }
        if plain.count < size { plain = [UInt8](repeating: 0, count: size) }
        var produced = 0
        let (status, crc): (libdeflate_result, UInt32) = pending.withUnsafeBytes { input in
            plain.withUnsafeMutableBytes { out in
                let status = libdeflate_deflate_decompress(decompressor, input.baseAddress! + dataStart, dataEnd - dataStart,
                                                           out.baseAddress, size, &produced)
                return (status, status == LIBDEFLATE_SUCCESS ? UInt32(libdeflate_crc32(0, out.baseAddress, produced)) : 0)
            }
        }
        guard status == LIBDEFLATE_SUCCESS, produced == size else {
            throw ArchiveError(.malformed, "gzip data is corrupt (a member does not decompress)")
        }
        guard crc == expectedCRC else { throw ArchiveError(.malformed, "gzip data is corrupt (CRC-32 mismatch)") }
        sawMember = true
        try plain.withUnsafeBytes { try next.write(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
    }

    public func finish() throws {
        if let streaming { return try streaming.finish() }
        guard pending.isEmpty else { throw ArchiveError(.truncated, "gzip stream ends inside a member") }
        guard sawMember else { throw ArchiveError(.truncated, "gzip stream is empty") }
        try next.finish()
    }
}

/// zlib streaming inflate for gzip written by other tools, including concatenated members.
final class ZlibInflater: ByteSink {
    private var stream = z_stream()
    private let next: ByteSink
    private var output: [UInt8]
    private var atMemberEnd = true
    private var sawInput = false

    init(next: ByteSink, outputBufferSize: Int = 256 * 1024) throws {
        self.next = next
        self.output = [UInt8](repeating: 0, count: outputBufferSize)
        guard drkit_inflate_init_gzip(&stream) == Z_OK else {
            throw ArchiveError(.library, "zlib could not start a gzip reader")
        }
    }

    deinit { inflateEnd(&stream) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
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

    func finish() throws {
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
