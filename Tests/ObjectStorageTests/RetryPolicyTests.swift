import XCTest
import Foundation
import Common
import TestSupport
@testable import ObjectStorage

final class RetryPolicyTests: XCTestCase {
    let policy = RetryPolicy(maxAttempts: 5, baseDelay: 0.2, maxDelay: 20)

    func testWhatIsRetried() {
        for status in [500, 502, 503, 504, 429] {
            XCTAssertTrue(policy.shouldRetry(status: status, errorCode: nil, transportRetryable: false, attempt: 1), "\(status)")
        }
        for status in [400, 403, 404, 409] {
            XCTAssertFalse(policy.shouldRetry(status: status, errorCode: nil, transportRetryable: false, attempt: 1), "\(status)")
        }
        XCTAssertTrue(policy.shouldRetry(status: 400, errorCode: "RequestTimeout", transportRetryable: false, attempt: 1))
        XCTAssertTrue(policy.shouldRetry(status: 503, errorCode: "SlowDown", transportRetryable: false, attempt: 4))
        XCTAssertFalse(policy.shouldRetry(status: 503, errorCode: "SlowDown", transportRetryable: false, attempt: 5), "bounded")
        XCTAssertTrue(policy.shouldRetry(status: nil, errorCode: nil, transportRetryable: true, attempt: 1))
        XCTAssertFalse(policy.shouldRetry(status: nil, errorCode: nil, transportRetryable: false, attempt: 1))
    }

    func testFullJitterBackoffAndRetryAfter() {
        XCTAssertEqual(policy.delay(attempt: 1, retryAfter: nil, unit: 0.999), 0.2 * 0.999, accuracy: 1e-9)
        XCTAssertEqual(policy.delay(attempt: 4, retryAfter: nil, unit: 0.5), 1.6 * 0.5, accuracy: 1e-9)
        XCTAssertEqual(policy.delay(attempt: 30, retryAfter: nil, unit: 0.5), 10, accuracy: 1e-9, "capped")
        XCTAssertEqual(policy.delay(attempt: 1, retryAfter: nil, unit: 0), 0)
        XCTAssertEqual(policy.delay(attempt: 1, retryAfter: 3, unit: 0.5), 3, "never shorter than Retry-After")
        XCTAssertEqual(RetryPolicy.parseRetryAfter("2"), 2)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        XCTAssertEqual(RetryPolicy.parseRetryAfter("Tue, 14 Nov 2023 22:13:25 GMT", now: now)!, 5, accuracy: 1)
        XCTAssertNil(RetryPolicy.parseRetryAfter("soon"))
    }

    func testPartSizeGrowsToStayUnder10000Parts() {
        XCTAssertEqual(S3Store.partSize(base: 8 << 20, partNumber: 1), 8 << 20)
        XCTAssertEqual(S3Store.partSize(base: 8 << 20, partNumber: 1000), 8 << 20)
        XCTAssertEqual(S3Store.partSize(base: 8 << 20, partNumber: 1001), 16 << 20)
        XCTAssertEqual(S3Store.partSize(base: 8 << 20, partNumber: 10_000), min(8 << 29, 5 << 30))
        let total = (1...10_000).reduce(Int64(0)) { $0 + Int64(S3Store.partSize(base: 8 << 20, partNumber: $1)) }
        XCTAssertGreaterThan(total, Int64(5) << 40, "10,000 growing parts hold more than 5 TiB")
    }
}
