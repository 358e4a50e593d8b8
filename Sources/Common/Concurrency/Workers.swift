import Foundation

/// A set of threads pulling items from one queue. The first error stops the others from taking
/// new items and is rethrown by `run`. Blocking libpq and file I/O run well on plain threads.
public final class WorkQueue<Item: Sendable>: Sendable {
    private let items: [Item]
    private let state = Locked((next: 0, firstError: Error?.none))

    public init(_ items: [Item]) { self.items = items }

    public var failed: Bool { state.current.firstError != nil }

    func take() -> Item? {
        state.withLock { s -> Item? in
            guard s.firstError == nil, s.next < items.count else { return nil }
            defer { s.next += 1 }
            return items[s.next]
        }
    }

    func record(_ error: Error) {
        state.withLock { if $0.firstError == nil { $0.firstError = error } }
    }

    /// Starts `workers` threads; each calls `setUp` once (e.g. to open its connection), then `body` per item.
    public func run<Context>(workers: Int, setUp: @escaping @Sendable (Int) throws -> Context,
                             body: @escaping @Sendable (Context, Item) throws -> Void) throws {
        // Errors are recorded here too, so that `take` stops handing out items at once.
        do {
            try Workers.run(count: min(workers, max(items.count, 1))) { [self] index in
                do {
                    let context = try setUp(index)
                    while let item = take() { try body(context, item) }
                } catch {
                    record(error)
                    throw error
                }
            }
        } catch {
            // The cause, not a worker's "stopped: another worker failed" that reached Workers first.
            throw state.current.firstError ?? error
        }
    }
}

public enum Workers {
    /// Runs `body` on `count` threads and waits for all; rethrows the first error.
    public static func run(count: Int, body: @escaping @Sendable (Int) throws -> Void) throws {
        let group = DispatchGroup()
        let firstError = Locked<Error?>(nil)
        for index in 0..<max(1, count) {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do { try body(index) } catch { firstError.withLock { if $0 == nil { $0 = error } } }
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        group.wait()
        if let error = firstError.current { throw error }
    }
}

/// A schedule that worker threads share under one lock: `claim` waits until the schedule yields work
/// (another worker's `update` may release some) or all of it is done, and the first failure stops every
/// claim. The restore's table work and its pre-data batches each run on one.
/// `@unchecked`: every access to the schedule and the failure goes through `condition`.
public final class WorkBoard<Schedule>: @unchecked Sendable {
    private let condition = NSCondition()
    private var schedule: Schedule
    private let isFinished: (Schedule) -> Bool
    private var firstFailure: Error?

    public init(_ schedule: Schedule, isFinished: @escaping (Schedule) -> Bool) {
        self.schedule = schedule
        self.isFinished = isFinished
    }

    public var failed: Bool { failure != nil }

    /// The first error a worker reported.
    public var failure: Error? {
        condition.lock(); defer { condition.unlock() }
        return firstFailure
    }

    /// What `next` takes from the schedule, waiting while it yields nothing; nil when everything is
    /// done or a worker failed.
    public func claim<Work>(_ next: (inout Schedule) -> Work?) -> Work? {
        condition.lock(); defer { condition.unlock() }
        while firstFailure == nil && !isFinished(schedule) {
            if let work = next(&schedule) { return work }
            condition.wait()
        }
        return nil
    }

    /// Records what a worker finished, and wakes the workers waiting for it.
    public func update(_ change: (inout Schedule) -> Void) {
        condition.lock(); defer { condition.unlock() }
        change(&schedule)
        condition.broadcast()
    }

    public func fail(_ error: Error) {
        condition.lock(); defer { condition.unlock() }
        if firstFailure == nil { firstFailure = error }
        condition.broadcast()
    }
}
