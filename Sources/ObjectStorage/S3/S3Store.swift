import Foundation
import Common

/// A repository in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, R2, moto), under a key prefix.
public final class S3Store: ObjectStore, Sendable {
    let client: S3Client
    public var configuration: S3Configuration { client.config }

    public init(configuration: S3Configuration, trace: (@Sendable (String) -> Void)? = nil) {
        client = S3Client(config: configuration, trace: trace)
    }

    public var location: String { client.config.location }

    public func makeWriter(key: String, lock: ObjectLock?) throws -> ObjectWriter {
        S3ObjectWriter(client: client, key: key, lock: lock)
    }

    public func read(key: String, range: Range<Int64>?, into sink: ByteSink) throws {
        if let range, range.isEmpty { return }
        try client.getObject(key, range: range) { try sink.write($0) }
    }

    public func list(prefix: String) throws -> [ObjectInfo] {
        let base = client.config.prefix.isEmpty ? "" : client.config.prefix + "/"
        return try client.listObjects(prefix: base + prefix).map {
            ObjectInfo(key: String($0.key.dropFirst(base.count)), size: $0.size, modified: $0.modified,
                       uploadedInParts: $0.etag?.contains("-") ?? false)
        }.sorted { $0.key < $1.key }
    }

    public func listFolders(prefix: String) throws -> [String] {
        let base = client.config.prefix.isEmpty ? "" : client.config.prefix + "/"
        return try client.listCommonPrefixes(prefix: base + prefix).map { String($0.dropFirst(base.count + prefix.count).dropLast()) }.sorted()
    }

    public func delete(keys: [String]) throws {
        try client.deleteObjects(bucketKeys: keys.map(client.bucketKey))
    }

    /// Size and modification time of one object (HEAD), nil when it does not exist.
    public func info(key: String) throws -> ObjectInfo? {
        try client.headObject(key).map { ObjectInfo(key: key, size: $0.size, modified: $0.modified) }
    }


    /// The part size for part `number`: the configured size for the first 1000 parts, then doubling every
    /// 1000 parts (capped at 5 GiB), so a stream of unknown length fits in S3's 10,000 parts
    /// (about 1000 × size × 1023 bytes: 8 TiB with 8 MiB parts).
    public static func partSize(base: Int, partNumber: Int) -> Int {
        let doublings = min((partNumber - 1) / 1000, 20)
        return min(base << doublings, 5 << 30)
    }
}

/// What `storage check` asks an S3 endpoint beyond the object contract.
extension S3Store: StorageProbing {
    /// The server's clock (the Date header of a small listing), for clock-skew checks.
    public func serverTime() throws -> Date? {
        let response = try client.send("ListObjectsV2", method: "GET", key: nil,
                                       query: [("list-type", "2"), ("max-keys", "1"), ("prefix", client.bucketKey("drkit-clock"))])
        return response.headers["date"].flatMap(HTTPDate.parse)
    }

    /// The bucket's default Object Lock rule, "not enabled" when the bucket has none.
    public func objectLockStatus() throws -> String {
        let response = try client.send("GetObjectLockConfiguration", method: "GET", key: nil, query: [("object-lock", "")], accept: [404, 400])
        guard (200..<300).contains(response.status), let root = XMLNodeTree.parse(response.body) else { return "not enabled" }
        guard root.value("ObjectLockEnabled") == "Enabled" else { return "not enabled" }
        let mode = root.deepValue("Mode").map { " \($0.lowercased())" } ?? ""
        let days = root.deepValue("Days").map { ", \($0) days" } ?? root.deepValue("Years").map { ", \($0) years" } ?? ""
        return "enabled\(mode)\(days)"
    }

    /// Removes every version (and delete marker) of every object under `prefix`, governance-locked ones
    /// included: on a versioned bucket a plain delete only hides an object. For probes drkit wrote itself.
    public func purgeVersions(prefix: String) throws -> Int {
        let versions = try client.listVersions(prefix: client.bucketKey(prefix))
        try client.deleteObjects(versions, bypassGovernance: true)
        return versions.count
    }

    /// A copy of this store that uploads in parts of S3's minimum size, so probes stay small.
    private var smallParts: S3Store {
        var config = configuration
        config.partSize = 5 << 20
        return S3Store(configuration: config)
    }

    /// An 11 MiB object in 5 MiB parts, completed and read back; then an upload aborted part-way,
    /// which must leave no open upload.
    public func probeMultipart(folder: String) throws -> String {
        let store = smallParts
        let payload = SecureRandom.bytes(11 << 20)
        try store.put(key: "\(folder)/multipart", bytes: payload)
        guard try store.get(key: "\(folder)/multipart") == payload else { throw StorageError(.failed, "the multipart object came back different") }
        let aborted = try store.makeWriter(key: "\(folder)/aborted")
        try aborted.write(Array(payload[0..<(6 << 20)]))
        aborted.abort()
        let open = try store.incompleteWrites().filter { $0.key.hasPrefix(folder) }
        guard open.isEmpty else { throw StorageError(.failed, "AbortMultipartUpload left \(open.count) upload(s) open") }
        return "3 parts completed, 1 upload aborted"
    }

    /// An object uploaded in parts with a short governance lock must come back with that retention:
    /// some stores ignore the lock of CreateMultipartUpload, and the writer then sets it afterwards.
    public func probeLockedMultipart(folder: String) throws -> String {
        let store = smallParts
        let lock = ObjectLock(mode: .governance, retainUntil: Date().addingTimeInterval(120))
        try store.put(key: "\(folder)/locked-multipart", bytes: SecureRandom.bytes(6 << 20), lock: lock)
        guard let kept = try store.lock(of: "\(folder)/locked-multipart"), kept.holds(lock) else {
            throw StorageError(.failed, "an object uploaded in parts has no Object Lock retention: backups here would be unprotected")
        }
        return "2 parts, \(kept.mode.rawValue) retention kept"
    }
}

extension S3Store: ObjectLockReading {
    public func lock(of key: String) throws -> ObjectLock? {
        try client.retention(key)
    }

    public func objectLockEnabled() throws -> Bool { try objectLockStatus().hasPrefix("enabled") }

}

extension S3Store: IncompleteWriteListing {
    /// Multipart uploads under the repository prefix that were started and never completed or aborted.
    public func incompleteWrites() throws -> [IncompleteWrite] {
        let base = client.config.prefix.isEmpty ? "" : client.config.prefix + "/"
        return try client.listMultipartUploads(prefix: base).map {
            IncompleteWrite(key: String($0.key.dropFirst(base.count)), id: $0.uploadId, started: $0.initiated)
        }
    }

    public func discard(_ write: IncompleteWrite) throws {
        try client.abortMultipartUpload(bucketKey: client.bucketKey(write.key), uploadId: write.id)
    }
}

/// Streams one object: a single PUT when it fits in one part, else a multipart upload with parts
/// sent concurrently. Memory: at most `uploadConcurrency + 1` parts. Any failed part aborts the upload;
/// success is only reported after CompleteMultipartUpload.
final class S3ObjectWriter: ObjectWriter {
    private let client: S3Client
    private let key: String
    private var buffer: [UInt8] = []
    private var partNumber = 1
    private var uploadId: String?
    private let slots: DispatchSemaphore
    private let inFlight = DispatchGroup()
    private let state = Locked((etags: [Int: String](), error: Error?.none))
    private var done = false
    private var bytesWritten: Int64 = 0

    private let lock: ObjectLock?

    init(client: S3Client, key: String, lock: ObjectLock?) {
        self.client = client
        self.key = key
        self.lock = lock
        self.slots = DispatchSemaphore(value: max(1, client.config.uploadConcurrency))
    }

    deinit { abort() }

    private var currentPartSize: Int { S3Store.partSize(base: client.config.partSize, partNumber: partNumber) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let error = state.current.error { throw error }
        bytesWritten += Int64(bytes.count)
        var input = bytes
        while !input.isEmpty {
            let take = min(currentPartSize - buffer.count, input.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0..<take]))
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            if buffer.count == currentPartSize { try sendPart() }
        }
    }

    private func sendPart() throws {
        if uploadId == nil { uploadId = try client.createMultipartUpload(key, lock: lock) }
        guard partNumber <= 10_000 else {
            throw StorageError(.failed, "s3://\(client.config.bucket)/\(client.bucketKey(key)) needs more than 10,000 parts")
        }
        let body = buffer
        buffer = []
        buffer.reserveCapacity(currentPartSize)
        let number = partNumber
        partNumber += 1
        slots.wait()
        if let error = state.current.error {
            slots.signal()
            throw error
        }
        inFlight.enter()
        let uploadId = self.uploadId!
        let md5 = lock != nil
        Thread { [client, key, state, slots, inFlight] in
            defer {
                slots.signal()
                inFlight.leave()
            }
            do {
                let etag = try client.uploadPart(key, uploadId: uploadId, partNumber: number, body: body, contentMD5: md5)
                state.withLock { $0.etags[number] = etag }
            } catch {
                state.withLock { if $0.error == nil { $0.error = error } }
            }
        }.start()
    }

    func finish() throws {
        guard !done else { return }
        if uploadId == nil {
            done = true
            try client.putObject(key, body: buffer, lock: lock)
            buffer = []
            return
        }
        do {
            if !buffer.isEmpty { try sendPart() }
            inFlight.wait()
            let result = state.current
            if let error = result.error { throw error }
            let parts = result.etags.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            guard parts.count == partNumber - 1 else {
                throw StorageError(.failed, "multipart upload of \(key): \(parts.count) of \(partNumber - 1) parts confirmed")
            }
            let version = try complete(parts)
            if let lock { try client.ensureRetention(key, lock: lock, versionId: version) }
            done = true
            abortOrphans()
        } catch {
            abort()
            throw error
        }
    }

    /// CompleteMultipartUpload. When its answer was lost and the retry is told NoSuchUpload (as AWS
    /// answers for an upload already completed), the object of the expected size is the completed one.
    private func complete(_ parts: [(Int, String)]) throws -> String? {
        do { return try client.completeMultipartUpload(key, uploadId: uploadId!, parts: parts) } catch let error as StorageError where error.kind == .notFound {
            guard let stored = try client.headObject(key), stored.size == bytesWritten else { throw error }
            return nil
        }
    }

    func abort() {
        guard !done else { return }
        done = true
        inFlight.wait()
        if let uploadId {
            try? client.abortMultipartUpload(bucketKey: client.bucketKey(key), uploadId: uploadId)
            abortOrphans()
        }
        buffer = []
    }

    /// A CreateMultipartUpload whose answer was lost and retried leaves a first upload nobody knows
    /// the id of. Each key is written by one writer, so any other upload still open for it is such an
    /// orphan: best effort, one listing per multipart object.
    private func abortOrphans() {
        let fullKey = client.bucketKey(key)
        guard let open = try? client.listMultipartUploads(prefix: fullKey) else { return }
        for upload in open where upload.key == fullKey && upload.uploadId != uploadId {
            try? client.abortMultipartUpload(bucketKey: fullKey, uploadId: upload.uploadId)
        }
    }
}
