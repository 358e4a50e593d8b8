import XCTest
import ObjectStorage
@testable import DRKit

/// What `storage check` tells the operator for each kind of failure, by value.
final class StorageCheckTests: XCTestCase {
    func testEachFailureSaysWhatToDo() {
        let location = "s3://bucket/prod"
        let denied = StorageCheck.explain(StorageError(.denied, "PutObject s3://bucket/prod/x: access denied (HTTP 403 AccessDenied)"), step: "put", location: location)
        XCTAssertTrue(denied.hasSuffix("the credentials lack s3:PutObject on s3://bucket/prod"), denied)
        let lockDenied = StorageCheck.explain(StorageError(.denied, "PutObjectRetention: access denied"), step: "locked multipart", location: location)
        XCTAssertTrue(lockDenied.contains("s3:PutObjectRetention"), lockDenied)
        let wrongSecret = StorageCheck.explain(StorageError(.denied, "ListObjectsV2 s3://bucket: S3 authentication failed (SignatureDoesNotMatch): check the access key and secret"),
                                               step: "list", location: location)
        XCTAssertFalse(wrongSecret.contains("lack"), "a wrong secret is no missing permission: \(wrongSecret)")
        let down = StorageCheck.explain(StorageError(.unreachable, "ListObjectsV2 s3://bucket failed: Couldn't connect to server"), step: "list", location: location)
        XCTAssertTrue(down.contains("check the endpoint, that the server runs"), down)
        let outage = StorageCheck.explain(StorageError(.failed, "ListObjectsV2 s3://bucket failed after 8 attempts: HTTP 503 SlowDown"), step: "list", location: location)
        XCTAssertTrue(outage.contains("retry later"), outage)
    }
}
