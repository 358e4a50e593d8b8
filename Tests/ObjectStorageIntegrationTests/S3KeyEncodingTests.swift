import XCTest
import Foundation
import Common
@testable import ObjectStorage
import TestSupport

/// Keys with spaces and non-ASCII characters survive the signed round trip on the real server.
final class S3KeyEncodingTests: XCTestCase {
    func testAwkwardKeysRoundTrip() throws {
        let s3 = try TestServices.s3()
        let prefix = "keys-\(UUID().uuidString.prefix(8))"
        let config = try S3Configuration.resolve(url: "s3://\(s3.bucket)/\(prefix)", environment: s3.environment())
        let store = S3Store(configuration: config)
        let keys = ["with space/file one.bin", "ünïcödé/日本語.txt", "symbols/a+b=c&d,f@g$h'i(j)!*.k", "percent/100%.txt", "tilde~/x"]
        for (i, key) in keys.enumerated() { try store.put(key: key, bytes: [UInt8(i), 42]) }
        XCTAssertEqual(Set(try store.list(prefix: "").map(\.key)), Set(keys))
        for (i, key) in keys.enumerated() { XCTAssertEqual(try store.get(key: key), [UInt8(i), 42], key) }
        XCTAssertEqual(try store.info(key: keys[1])?.size, 2, "HEAD")
        XCTAssertNil(try store.info(key: "no/such/key"))
        try store.delete(keys: keys)
        XCTAssertTrue(try store.list(prefix: "").isEmpty)
        XCTAssertThrowsError(try store.get(key: keys[0])) { XCTAssertEqual(($0 as? StorageError)?.kind, .notFound) }
    }
}
