internal import CZlib
internal import CShims

/// Compresses everything written into one gzip (RFC 1952) member and forwards it downstream,
/// so a decrypted object is readable by `gunzip`.
public final class GzipCompressor: ByteSink {
    private var stream = z_stream()
    private let next: ByteSink
    private var output: [UInt8]
    private var finished = false

    public init(level: Int, next: ByteSink, outputBufferSize: Int = 256 * 1024) throws {
        self.next = next
        self.output = [UInt8](repeating: 0, count: outputBufferSize)
        guard (0...9).contains(level) else { throw ArchiveError(.library, "compression level must be 0...9, got \(level)") }
        guard drkit_deflate_init_gzip(&stream, Int32(level)) == Z_OK else {
            throw ArchiveError(.library, "zlib could not start a gzip stream")
        }
    }

    deinit { deflateEnd(&stream) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        try pump(flush: Z_NO_FLUSH)
    }

    public func finish() throws {
        guard !finished else { return }
        finished = true
        stream.next_in = nil
        stream.avail_in = 0
        try pump(flush: Z_FINISH)
        try next.finish()
    }

    private func pump(flush: Int32) throws {
        let capacity = output.count
        while true {
            let (status, produced): (Int32, Int) = output.withUnsafeMutableBufferPointer { out in
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(capacity)
                let status = deflate(&stream, flush)
                return (status, capacity - Int(stream.avail_out))
            }
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw ArchiveError(.library, "zlib deflate failed (\(status))")
            }
            if produced > 0 {
                try output.withUnsafeBytes { try next.write(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            }
            if flush == Z_FINISH {
                if status == Z_STREAM_END { return }
            } else if stream.avail_in == 0 && produced < capacity {
                return
            }
        }
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
