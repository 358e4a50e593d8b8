import Common
internal import CZstd

/// Compresses everything written as one zstd frame, streamed: memory is the compressor's window and
/// two fixed buffers, whatever the input size. `zstd -d` reads the result.
public final class ZstdCompressor: ByteSink {
    public static let levels = 1...19
    private let context: OpaquePointer
    private let next: ByteSink
    private var output: [UInt8]
    private var finished = false

    public init(level: Int, next: ByteSink) throws {
        guard ZstdCompressor.levels.contains(level) else { throw ArchiveError(.library, "zstd level must be 1...19, got \(level)") }
        guard let context = ZSTD_createCCtx() else { throw ArchiveError(.library, "libzstd could not allocate a compressor") }
        self.context = context
        self.next = next
        self.output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        try Zstd.check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level)), "setting the zstd level")
        try Zstd.check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1), "enabling zstd checksums")
    }

    deinit { ZSTD_freeCCtx(context) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        while input.pos < input.size { _ = try step(&input, ZSTD_e_continue) }
    }

    public func finish() throws {
        guard !finished else { return }
        finished = true
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try step(&input, ZSTD_e_end) != 0 {}
        try next.finish()
    }

    /// One call into libzstd; forwards what it produced and returns what it still has to flush.
    private func step(_ input: inout ZSTD_inBuffer, _ directive: ZSTD_EndDirective) throws -> Int {
        let capacity = output.count
        let (remaining, produced): (Int, Int) = output.withUnsafeMutableBytes { out in
            var buffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
            let remaining = ZSTD_compressStream2(context, &buffer, &input, directive)
            return (remaining, buffer.pos)
        }
        try Zstd.check(remaining, "zstd compression")
        if produced > 0 { try output.withUnsafeBytes { try next.write(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
        return remaining
    }
}

/// Decompresses one or more zstd frames, streamed, with the window bounded (128 MiB), so a hostile
/// frame cannot ask for unbounded memory. A stream that ends inside a frame is truncated.
public final class ZstdDecompressor: ByteSink {
    static let maxWindowLog: Int32 = 27
    private let context: OpaquePointer
    private let next: ByteSink
    private var output: [UInt8]
    private var frameComplete = true
    private var sawInput = false

    public init(next: ByteSink) throws {
        guard let context = ZSTD_createDCtx() else { throw ArchiveError(.library, "libzstd could not allocate a decompressor") }
        self.context = context
        self.next = next
        self.output = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
        try Zstd.check(ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, ZstdDecompressor.maxWindowLog), "bounding the zstd window")
    }

    deinit { ZSTD_freeDCtx(context) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        sawInput = true
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        let capacity = output.count
        var outputFull = false
        while input.pos < input.size || outputFull {
            let (hint, produced): (Int, Int) = output.withUnsafeMutableBytes { out in
                var buffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
                let hint = ZSTD_decompressStream(context, &buffer, &input)
                return (hint, buffer.pos)
            }
            if ZSTD_isError(hint) != 0 {
                throw ArchiveError(.malformed, "zstd data is corrupt (\(String(cString: ZSTD_getErrorName(hint))))")
            }
            frameComplete = hint == 0
            outputFull = produced == capacity
            if produced > 0 { try output.withUnsafeBytes { try next.write(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
        }
    }

    public func finish() throws {
        guard sawInput else { throw ArchiveError(.truncated, "zstd stream is empty") }
        guard frameComplete else { throw ArchiveError(.truncated, "zstd stream ends inside a frame") }
        try next.finish()
    }
}

enum Zstd {
    static func check(_ code: Int, _ what: String) throws {
        if ZSTD_isError(code) != 0 { throw ArchiveError(.library, "\(what) failed: \(String(cString: ZSTD_getErrorName(code)))") }
    }
}
