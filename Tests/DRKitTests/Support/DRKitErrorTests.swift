import XCTest
import PostgresClient
import ObjectStorage
@testable import DRKit

final class DRKitErrorTests: XCTestCase {
    func testWrappedErrorsKeepTheirCauseAndSQLState() {
        let database = PostgresError(.queryFailed, "ERROR: deadlock detected", sqlState: "40P01")
        let wrapped = DRKitError.wrap(database, "post-data DDL")
        XCTAssertEqual(wrapped.code, .database)
        XCTAssertEqual(wrapped.message, "post-data DDL: ERROR: deadlock detected")
        XCTAssertEqual(wrapped.sqlState, "40P01")
        XCTAssertEqual((wrapped.cause as? PostgresError)?.sqlState, "40P01")
        XCTAssertEqual(DRKitError.wrap(wrapped, "outer").sqlState, "40P01", "wrapping again keeps the cause")
        let storage = DRKitError.wrap(StorageError(.invalidLocation, "bad URL"))
        XCTAssertEqual(storage.code, .usage)
        XCTAssertEqual((storage.cause as? StorageError)?.kind, .invalidLocation)
    }
}
