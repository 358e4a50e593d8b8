import XCTest
@testable import DRKit

final class RateLimiterTests: XCTestCase {
    func testRatesNeedAUnitAndReadAsWritten() {
        XCTAssertEqual(RateLimiter.parse("50MiB/s")?.bytesPerSecond, 50 * 1_048_576)
        XCTAssertEqual(RateLimiter.parse("800KB/s")?.bytesPerSecond, 800_000)
        XCTAssertEqual(RateLimiter.parse("1GiB")?.bytesPerSecond, 1_073_741_824)
        XCTAssertEqual(RateLimiter.parse("1.5MB/s")?.bytesPerSecond, 1_500_000)
        XCTAssertEqual(RateLimiter.parse("512B/s")?.bytesPerSecond, 512)
        for bad in ["50", "50/s", "0MiB/s", "-1MB/s", "fastMB/s", "MiB/s", "10 furlongs"] {
            XCTAssertNil(RateLimiter.parse(bad), bad)
        }
    }
}
