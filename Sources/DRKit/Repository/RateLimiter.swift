import Foundation
import ObjectStorage
import Common

/// `--max-rate`: the stored bytes a command reads or writes, held to a rate across all its workers.
/// Each chunk books its share of a shared timeline and sleeps until the timeline catches up (less a
/// small allowance, so that short bursts need no sleep); over a run the average is the rate.
public final class RateLimiter: @unchecked Sendable {
    public let bytesPerSecond: Double
    private let lock = NSLock()
    private var booked: Double?
    private let allowance = 0.05

    public init(bytesPerSecond: Double) {
        precondition(bytesPerSecond > 0)
        self.bytesPerSecond = bytesPerSecond
    }

    /// "50MiB/s", "800KB/s", "1GiB/s" (the "/s" is optional); units B, KB, MB, GB (powers of 1000) and
    /// KiB, MiB, GiB (of 1024). A number without a unit is refused, as durations are.
    public static func parse(_ text: String) -> RateLimiter? {
        var value = text.trimmingCharacters(in: .whitespaces)
        if value.hasSuffix("/s") { value.removeLast(2) }
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        guard let (unit, factor) = units.first(where: { value.hasSuffix($0.0) }),
              let number = Double(value.dropLast(unit.count).trimmingCharacters(in: .whitespaces)), number > 0, number.isFinite else { return nil }
        return RateLimiter(bytesPerSecond: number * factor)
    }

    public func consume(_ bytes: Int) {
        guard bytes > 0 else { return }
        let now = ProcessInfo.processInfo.systemUptime
        lock.lock()
        let start = max(now - allowance, booked ?? now)
        let end = start + Double(bytes) / bytesPerSecond
        booked = end
        lock.unlock()
        let wait = end - now - allowance
        if wait > 0 { usleep(UInt32(min(wait, 60) * 1_000_000)) }
    }
}

/// A sink (or an object writer: `abort` is passed on) that pays for each chunk at the limiter first.
final class RateLimitedSink: ObjectWriter {
    let limiter: RateLimiter
    let next: ByteSink

    init(limiter: RateLimiter, next: ByteSink) {
        self.limiter = limiter
        self.next = next
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        limiter.consume(bytes.count)
        try next.write(bytes)
    }

    func finish() throws { try next.finish() }
    func abort() { (next as? ObjectWriter)?.abort() }
}
