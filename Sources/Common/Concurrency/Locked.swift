import Foundation

/// A value guarded by a lock, for state shared between worker threads.
/// `@unchecked`: this is the primitive the others rely on; every access to `value` holds `lock`.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    @discardableResult
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock(); defer { lock.unlock() }
        return try body(&value)
    }

    public var current: Value { withLock { $0 } }
}
