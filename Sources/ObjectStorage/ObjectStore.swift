import Common
import Foundation

/// Metadata of one stored object.
public struct ObjectInfo: Equatable, Sendable {
    public var key: String
    public var size: Int64
    public var modified: Double  // seconds since 1970
    /// Whether the store assembled the object from parts (S3: an ETag ending in `-N`); such objects
    /// may not carry what was asked of the upload (Object Lock on Ceph RGW), so callers check them.
    public var uploadedInParts: Bool

    public init(key: String, size: Int64, modified: Double, uploadedInParts: Bool = false) {
        self.key = key
        self.size = size
        self.modified = modified
        self.uploadedInParts = uploadedInParts
    }
}

public struct StorageError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        case notFound, unreachable, denied, failed
        /// The location or its options cannot name a store (bad URL, unknown parameter, no credentials).
        case invalidLocation
    }
    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// S3 Object Lock retention for an object: until `retainUntil` nobody may delete or overwrite that
/// version (governance: except a caller allowed to bypass it; compliance: nobody, not even the root account).
public struct ObjectLock: Codable, Equatable, Sendable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        case governance, compliance
    }

    public var mode: Mode
    public var retainUntil: Date

    public init(mode: Mode, retainUntil: Date) {
        self.mode = mode
        self.retainUntil = retainUntil
    }

    /// Whether this retention protects at least as much as `wanted`: the same mode or compliance, until
    /// the same time or later (stores keep whole seconds or milliseconds).
    public func holds(_ wanted: ObjectLock) -> Bool {
        (mode == wanted.mode || mode == .compliance) && retainUntil >= wanted.retainUntil.addingTimeInterval(-1)
    }
}

/// A streaming upload. Bytes written are not visible under the key until `finish()` returns;
/// `abort()` discards them. Either `finish` or `abort` must be called.
public protocol ObjectWriter: ByteSink {
    func abort()
}

/// A repository's storage. Keys are `/`-separated paths relative to the repository root.
///
/// Contracts every store keeps:
/// - `makeWriter`/`finish` is atomic: readers see the whole object or nothing, never a prefix.
/// - `read` streams the object's bytes (or those in `range`) to `sink` in order and does not call
///   `sink.finish()`; a range ending past the object ends at its last byte; a missing key throws
///   `StorageError` of kind `.notFound`.
/// - `list` returns every committed object under `prefix`, in key order (byte order of the UTF-8 key),
///   however many there are (stores page internally).
/// - `listFolders` returns the names of the folders directly under `prefix` (a prefix ending in `/`, or
///   "" for the root): each distinct next path segment that has objects below it, in order, without
///   listing those objects (S3: a delimiter listing), so finding backups costs O(folders), not O(objects).
/// - `delete` ignores keys that do not exist; a deleted key is gone from `read` and `list` at once.
/// - An aborted writer leaves nothing visible.
/// - Every method may be called from several threads at once.
public protocol ObjectStore: AnyObject, Sendable {
    /// Where the store is, for messages; never contains credentials.
    var location: String { get }
    /// `lock`: retention to set on the object (stores without Object Lock refuse a lock they cannot keep).
    func makeWriter(key: String, lock: ObjectLock?) throws -> ObjectWriter
    func read(key: String, range: Range<Int64>?, into sink: ByteSink) throws
    func list(prefix: String) throws -> [ObjectInfo]
    func listFolders(prefix: String) throws -> [String]
    func delete(keys: [String]) throws
}

/// A write that started and never finished: an S3 multipart upload never completed or aborted,
/// or a local temporary file left by a killed process.
public struct IncompleteWrite: Sendable, Equatable {
    public var key: String
    /// The multipart upload id, or the temporary file's key.
    public var id: String
    /// Seconds since 1970.
    public var started: Double

    public init(key: String, id: String, started: Double) {
        self.key = key
        self.id = id
        self.started = started
    }
}

/// Stores that can tell an object's Object Lock retention (S3).
public protocol ObjectLockReading {
    /// The retention on the current version of `key`; nil when it has none (or does not exist).
    func lock(of key: String) throws -> ObjectLock?
    /// Whether the bucket has Object Lock enabled at all (so callers can skip per-object questions).
    func objectLockEnabled() throws -> Bool
}

/// Stores whose writes can leave their folder's sync for later (a directory: one fsync of each folder
/// before a commit instead of one per object). S3 objects are durable when their upload returns.
public protocol DeferredDurability {
    /// A writer that syncs the object's bytes but not its folder.
    func makeWriter(key: String, lock: ObjectLock?, syncFolder: Bool) throws -> ObjectWriter
    /// Syncs every folder under `prefix`, so the names of the objects written there are durable.
    func syncFolders(under prefix: String) throws
}

/// What `drkit storage check` asks a remote store beyond the object contract (S3).
public protocol StorageProbing {
    /// The server's clock, for clock-skew checks; nil when it sends none.
    func serverTime() throws -> Date?
    /// "enabled governance, 30 days" or "not enabled".
    func objectLockStatus() throws -> String
    /// An upload in parts completed and read back, and one aborted part-way that leaves nothing open.
    func probeMultipart(folder: String) throws -> String
    /// An upload in parts with a short governance lock comes back with its retention.
    func probeLockedMultipart(folder: String) throws -> String
    /// Removes every version and delete marker under `prefix` (probes on a versioned bucket); returns how many.
    func purgeVersions(prefix: String) throws -> Int
}

/// Stores that can find and discard incomplete writes (for `drkit repo clean`).
public protocol IncompleteWriteListing {
    func incompleteWrites() throws -> [IncompleteWrite]
    func discard(_ write: IncompleteWrite) throws
}

extension ObjectStore {
    public func makeWriter(key: String) throws -> ObjectWriter {
        try makeWriter(key: key, lock: nil)
    }

    public func read(key: String, into sink: ByteSink) throws {
        try read(key: key, range: nil, into: sink)
    }

    public func put(key: String, bytes: [UInt8], lock: ObjectLock? = nil) throws {
        let writer = try makeWriter(key: key, lock: lock)
        do {
            try writer.write(bytes)
            try writer.finish()
        } catch {
            writer.abort()
            throw error
        }
    }

    public func get(key: String) throws -> [UInt8] {
        let sink = BufferSink()
        try read(key: key, into: sink)
        return sink.bytes
    }
}
