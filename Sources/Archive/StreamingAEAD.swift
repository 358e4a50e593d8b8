import Common
/// Streaming authenticated encryption of one object (the construction age and Tink use):
///
///     header  = "DRKITSE1" | segment size (u32 BE) | reserved (u32, 0) | salt (32 bytes)
///     key     = HKDF-SHA256(data key, salt, "drkit-stream-v1|" + object name)
///     segment = AES-256-GCM(key, nonce = counter (11 bytes BE) | final flag, aad = header)
///
/// Every segment but the last holds exactly `segmentSize` plaintext bytes; the last one carries the
/// final flag. Truncation, reordering, a swapped object and any flipped bit fail authentication
/// before the segment's plaintext is passed on.
public enum StreamingAEAD {
    public static let magic: [UInt8] = Array("DRKITSE1".utf8)
    public static let headerSize = 48
    public static let defaultSegmentSize = 64 * 1024
    static let maxSegmentSize = 16 * 1024 * 1024

    static func objectKey(dataKey: [UInt8], salt: [UInt8], objectName: String) -> [UInt8] {
        HKDF.derive(key: dataKey, salt: salt, info: Array("drkit-stream-v1|\(objectName)".utf8), length: 32)
    }

    static func nonce(counter: UInt64, final: Bool) -> [UInt8] {
        var n = [UInt8](repeating: 0, count: 12)
        var c = counter
        for i in stride(from: 10, through: 3, by: -1) {
            n[i] = UInt8(c & 0xFF)
            c >>= 8
        }
        n[11] = final ? 1 : 0
        return n
    }

    public static func seal(_ plaintext: [UInt8], dataKey: [UInt8], objectName: String) throws -> [UInt8] {
        let sink = BufferSink()
        let sealer = try StreamSealer(dataKey: dataKey, objectName: objectName, next: sink)
        try sealer.write(plaintext)
        try sealer.finish()
        return sink.bytes
    }

    public static func open(_ sealed: [UInt8], dataKey: [UInt8], objectName: String) throws -> [UInt8] {
        let sink = BufferSink()
        let opener = StreamOpener(dataKey: dataKey, objectName: objectName, next: sink)
        try opener.write(sealed)
        try opener.finish()
        return sink.bytes
    }
}

public final class StreamSealer: ByteSink {
    private let next: ByteSink
    private let cipher: AESGCM
    private let header: [UInt8]
    private let segmentSize: Int
    private var pending: [UInt8] = []
    private var sealed: [UInt8] = []
    private var counter: UInt64 = 0
    private var wroteHeader = false

    public init(dataKey: [UInt8], objectName: String, segmentSize: Int = StreamingAEAD.defaultSegmentSize, next: ByteSink) throws {
        self.next = next
        self.segmentSize = segmentSize
        let salt = SecureRandom.bytes(32)
        var header = StreamingAEAD.magic
        header += withUnsafeBytes(of: UInt32(segmentSize).bigEndian, Array.init)
        header += [0, 0, 0, 0]
        header += salt
        self.header = header
        self.cipher = try AESGCM(key: StreamingAEAD.objectKey(dataKey: dataKey, salt: salt, objectName: objectName))
        pending.reserveCapacity(segmentSize * 2)
        sealed.reserveCapacity(segmentSize + AESGCM.tagSize)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeHeaderOnce()
        var input = bytes
        while !input.isEmpty {
            // Keep at least one byte back: the last segment must carry the final flag.
            let room = segmentSize + 1 - pending.count
            let take = min(room, input.count)
            pending.appendBytes(UnsafeRawBufferPointer(rebasing: input[0..<take]))
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            if pending.count > segmentSize {
                try emit(count: segmentSize, final: false)
            }
        }
    }

    public func finish() throws {
        try writeHeaderOnce()
        try emit(count: pending.count, final: true)
        try next.finish()
    }

    private func writeHeaderOnce() throws {
        guard !wroteHeader else { return }
        wroteHeader = true
        try next.write(header)
    }

    private func emit(count: Int, final: Bool) throws {
        sealed.removeAll(keepingCapacity: true)
        let nonce = StreamingAEAD.nonce(counter: counter, final: final)
        try pending.withUnsafeBytes { p in
            try cipher.seal(UnsafeRawBufferPointer(rebasing: p[0..<count]), nonce: nonce, aad: header, into: &sealed)
        }
        pending.removeFirst(count)
        counter += 1
        try next.write(sealed)
    }
}

public final class StreamOpener: ByteSink {
    private let next: ByteSink
    private let dataKey: [UInt8]
    private let objectName: String
    private var cipher: AESGCM?
    private var header: [UInt8] = []
    private var segmentSize = 0
    private var pending: [UInt8] = []
    private var plain: [UInt8] = []
    private var counter: UInt64 = 0

    public init(dataKey: [UInt8], objectName: String, next: ByteSink) {
        self.next = next
        self.dataKey = dataKey
        self.objectName = objectName
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        pending.appendBytes(bytes)
        if cipher == nil {
            guard pending.count >= StreamingAEAD.headerSize else { return }
            try readHeader()
        }
        let sealedSegment = segmentSize + AESGCM.tagSize
        var consumed = 0
        // A full segment is known not to be the last one only when more bytes follow it.
        while pending.count - consumed > sealedSegment {
            try openSegment(from: consumed, count: sealedSegment, final: false)
            consumed += sealedSegment
        }
        if consumed > 0 { pending.removeFirst(consumed) }
    }

    public func finish() throws {
        guard cipher != nil else {
            throw ArchiveError(.truncated, "encrypted object is truncated: its header is incomplete")
        }
        guard pending.count >= AESGCM.tagSize else {
            throw ArchiveError(.truncated, "encrypted object is truncated after segment \(counter)")
        }
        try openSegment(from: 0, count: pending.count, final: true)
        pending.removeAll()
        try next.finish()
    }

    private func readHeader() throws {
        let candidate = Array(pending[0..<StreamingAEAD.headerSize])
        guard Array(candidate[0..<8]) == StreamingAEAD.magic else {
            throw ArchiveError(.malformed, "object is not a drkit encrypted stream (bad magic)")
        }
        let size = candidate[8..<12].reduce(0) { $0 << 8 | Int($1) }
        guard size > 0 && size <= StreamingAEAD.maxSegmentSize else {
            throw ArchiveError(.malformed, "encrypted stream header has an invalid segment size")
        }
        segmentSize = size
        header = candidate
        let salt = Array(candidate[16..<48])
        cipher = try AESGCM(key: StreamingAEAD.objectKey(dataKey: dataKey, salt: salt, objectName: objectName))
        pending.removeFirst(StreamingAEAD.headerSize)
    }

    private func openSegment(from start: Int, count: Int, final: Bool) throws {
        plain.removeAll(keepingCapacity: true)
        let nonce = StreamingAEAD.nonce(counter: counter, final: final)
        let ok = pending.withUnsafeBytes { p in
            cipher!.open(UnsafeRawBufferPointer(rebasing: p[start..<(start + count)]), nonce: nonce, aad: header, into: &plain)
        }
        guard ok else {
            if final {
                throw ArchiveError(.authenticationFailed,
                                   "authentication failed at segment \(counter) (the object is truncated, corrupted, or was sealed with another key)")
            }
            throw ArchiveError(.authenticationFailed,
                               "authentication failed at segment \(counter) (the object is corrupted or was sealed with another key)")
        }
        counter += 1
        try next.write(plain)
    }
}
