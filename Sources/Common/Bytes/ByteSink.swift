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
    public func write(_ bytes: UnsafeRawBufferPointer) throws { self.bytes.appendBytes(bytes) }
    public func finish() throws { finished = true }
}

extension Array where Element == UInt8 {
    /// Appends raw bytes as one copy (appending an `UnsafeRawBufferPointer` as a sequence goes byte
    /// by byte in unoptimised builds, which made debug-built tests crawl through large objects).
    public mutating func appendBytes(_ raw: UnsafeRawBufferPointer) {
        raw.withMemoryRebound(to: UInt8.self) { append(contentsOf: $0) }
    }
}
