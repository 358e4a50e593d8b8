import ObjectStorage
import Foundation
import Common

/// A store that stops working when fenced: a failover drill fences the primary once the copy is
/// made, so any later read of it fails loudly instead of quietly making the drill easier than a real
/// regional outage.
final class FencedStore: ObjectStore {
    private let inner: ObjectStore
    /// Why the store is fenced; nil while it works.
    private let fenced = Locked<String?>(nil)

    init(_ inner: ObjectStore) { self.inner = inner }

    var location: String { inner.location }

    func fence(reason: String? = nil) {
        let why = reason ?? "the primary repository \(inner.location) is treated as lost in this failover drill; nothing may read it after the copy"
        fenced.withLock { $0 = why }
    }

    /// Lifts the fence (a simulated outage that ends).
    func unfence() { fenced.withLock { $0 = nil } }

    private func check() throws {
        if let reason = fenced.current { throw StorageError(.unreachable, reason) }
    }

    func makeWriter(key: String, lock: ObjectLock?) throws -> ObjectWriter {
        try check()
        return try inner.makeWriter(key: key, lock: lock)
    }

    func read(key: String, range: Range<Int64>?, into sink: ByteSink) throws {
        try check()
        try inner.read(key: key, range: range, into: sink)
    }

    func list(prefix: String) throws -> [ObjectInfo] {
        try check()
        return try inner.list(prefix: prefix)
    }

    func listFolders(prefix: String) throws -> [String] {
        try check()
        return try inner.listFolders(prefix: prefix)
    }

    func delete(keys: [String]) throws {
        try check()
        try inner.delete(keys: keys)
    }
}
