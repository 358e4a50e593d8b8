import Archive
import ObjectStorage
import Common

/// Writes one backup object: plain bytes → codec → (AES-256-GCM stream) → SHA-256 → store.
final class ObjectWriterPipeline {
    let name: String
    private let storeWriter: ObjectWriter
    private let hasher: HashingSink
    private let compressor: ByteSink
    private(set) var plainBytes: Int64 = 0
    private(set) var rows: Int64 = 0

    init(repository: Repository, backupId: String, name: String, codec: Codec, dataKey: [UInt8]?) throws {
        self.name = name
        storeWriter = try repository.makeBackupObjectWriter(key: "\(backupId)/\(name)")
        let hasher = HashingSink(next: storeWriter)
        self.hasher = hasher
        var sealed: ByteSink = hasher
        if let dataKey {
            sealed = try StreamSealer(dataKey: dataKey, objectName: "\(backupId)/\(name)", next: hasher)
        }
        compressor = try codec.compressor(next: sealed)
    }

    static func objectName(_ base: String, codec: Codec, encrypted: Bool) -> String {
        base + codec.fileExtension + (encrypted ? ".enc" : "")
    }

    func write(row: UnsafeRawBufferPointer) throws {
        rows += 1
        try write(row)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        plainBytes += Int64(bytes.count)
        try compressor.write(bytes)
    }

    /// Commits the object and returns its manifest record.
    func finish() throws -> ObjectRecord {
        try compressor.finish()
        return ObjectRecord(name: name, size: hasher.byteCount, sha256: hasher.hexDigest, plainBytes: plainBytes, rows: rows)
    }

    func abort() { storeWriter.abort() }

    /// Writes the whole object with `produce` and commits it, or aborts it: nothing half-written stays.
    func writeAll(_ produce: (ObjectWriterPipeline) throws -> Void) throws -> ObjectRecord {
        do {
            try produce(self)
            return try finish()
        } catch {
            abort()
            throw error
        }
    }
}

/// The objects of one opened backup: where they are stored, the data key that opens them and the
/// codec the manifest names. Reading one checks everything the manifest says about it.
struct BackupObjects: Sendable {
    let repository: Repository
    let backupId: String
    let dataKey: [UInt8]?
    let codec: Codec

    init(repository: Repository, backupId: String, dataKey: [UInt8]?, manifest: BackupManifest) throws {
        self.repository = repository
        self.backupId = backupId
        self.dataKey = dataKey
        do { codec = try Codec.recorded(algorithm: manifest.compression.algorithm, level: manifest.compression.level) } catch {
            throw DRKitError.wrap(error, "backup \(backupId)")
        }
    }

    struct Outcome {
        var rows: Int64
        var plainBytes: Int64
    }

    /// Store → SHA-256 and size check → decrypt → the codec → line count → `destination`.
    /// Throws before finishing `destination` when any check fails, so a COPY fed by it can be aborted.
    /// `isCopyData`: the object holds COPY rows, whose count must match the manifest.
    func read(_ record: ObjectRecord, isCopyData: Bool = true, destination: ByteSink) throws -> Outcome {
        let counter = LineCountingSink(next: destination)
        let decompressor = try codec.decompressor(next: counter)
        let opened: ByteSink = dataKey.map { StreamOpener(dataKey: $0, objectName: "\(backupId)/\(record.name)", next: decompressor) } ?? decompressor
        let gate = DeferredFinishSink(next: opened)
        let hasher = HashingSink(next: gate)
        do {
            try repository.store.read(key: "\(backupId)/\(record.name)", into: repository.limitedSink(hasher))
            try hasher.finish()
        } catch let e as StorageError where e.kind == .notFound {
            throw DRKitError(.integrity, "object \(record.name) of backup \(backupId) is missing from the repository")
        } catch {
            throw DRKitError.wrap(error, "object \(record.name)")
        }
        guard hasher.byteCount == record.size else {
            throw DRKitError(.integrity, "object \(record.name): size is \(hasher.byteCount) bytes, the manifest says \(record.size) (truncated or altered)")
        }
        guard hasher.hexDigest == record.sha256 else {
            throw DRKitError(.integrity, "object \(record.name): SHA-256 does not match the manifest (altered in the repository)")
        }
        do { try gate.release() } catch { throw DRKitError.wrap(error, "object \(record.name)") }
        guard !isCopyData || counter.lines == record.rows else {
            throw DRKitError(.integrity, "object \(record.name): holds \(counter.lines) rows, the manifest says \(record.rows)")
        }
        return Outcome(rows: counter.lines, plainBytes: counter.byteCount)
    }
}

extension BackupObjects {
    /// A small object's whole plain content (DDL, the table of contents, globals), every check passed.
    func contents(of record: ObjectRecord) throws -> [UInt8] {
        let buffer = BufferSink()
        _ = try read(record, isCopyData: false, destination: buffer)
        return buffer.bytes
    }

    /// A pack of small tables: each slice to the sink `open` gives for it (nil: checked, not kept).
    /// The pack's hash is checked only at its end: a restore loads a pack in one transaction.
    func readPack(_ pack: PackRecord, open: @escaping (Int) throws -> ByteSink?) throws -> Outcome {
        try read(pack.object, destination: PackSliceSplitter(slices: pack.slices, open: open))
    }

    /// A large object batch, each piece handed on as it is read; its count of large objects must match
    /// the manifest's (verify and restore alike).
    func readLargeObjects(_ record: ObjectRecord, piece: @escaping (UInt32, Int64, [UInt8]) throws -> Void) throws -> Outcome {
        let parser = LargeObjectStreamParser(piece: piece)
        let outcome = try read(record, isCopyData: false, destination: parser)
        guard parser.largeObjects == record.rows else {
            throw DRKitError(.integrity, "object \(record.name): holds \(parser.largeObjects) large objects, the manifest says \(record.rows)")
        }
        return outcome
    }
}

/// Holds back `finish()` until the caller has checked what passed through (the object's hash).
final class DeferredFinishSink: ByteSink {
    private let next: ByteSink
    init(next: ByteSink) { self.next = next }
    func write(_ bytes: UnsafeRawBufferPointer) throws { try next.write(bytes) }
    func finish() throws {}
    func release() throws { try next.finish() }
}
