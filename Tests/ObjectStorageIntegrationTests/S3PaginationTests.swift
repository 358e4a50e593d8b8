import XCTest
import Foundation
import Common
@testable import ObjectStorage
import TestSupport

/// Pagination and batching against the real server, with small pages so several are needed.
final class S3PaginationTests: XCTestCase {
    func testListingFollowsContinuationTokensAndDeletesInBatches() throws {
        let s3 = try TestServices.s3()
        var config = try S3Configuration.resolve(url: "s3://\(s3.bucket)/pages-\(UUID().uuidString.prefix(8))", environment: s3.environment())
        config.listPageSize = 3
        config.deleteBatchSize = 4
        let store = S3Store(configuration: config)
        let keys = (0..<11).map { "dir \($0 % 2)/object-\(String(format: "%02d", $0))" }
        for key in keys { try store.put(key: key, bytes: [1]) }
        XCTAssertEqual(try store.list(prefix: "").map(\.key), keys.sorted(), "4 pages of at most 3")
        XCTAssertEqual(try store.list(prefix: "dir 1/").count, 5)
        try store.delete(keys: keys)  // 3 batches
        XCTAssertTrue(try store.list(prefix: "").isEmpty)
    }
}
