import XCTest
import PostgresClient

/// Connection strings as drkit prints them: never a password, in any of libpq's forms.
final class ConnectionOptionsTests: XCTestCase {
    func testRedactedConnectionOptionsNeverShowPasswords() throws {
        let forms = [
            "host=db.internal port=5433 user=app password=s3cr3t-pw dbname=prod sslpassword=k3y-pass",
            "host=db.internal port=5433 user=app password='s3cr3t-pw' dbname=prod sslpassword='k3y-pass'",
            "postgresql://app:s3cr3t-pw@db.internal:5433/prod?sslpassword=k3y-pass&sslmode=require",
            "postgres://app:s3cr3t-pw@db.internal:5433/prod?sslpassword=k3y-pass",
        ]
        for conninfo in forms {
            let redacted = try ConnectionOptions(conninfo).redacted
            XCTAssertFalse(redacted.contains("s3cr3t"), redacted)
            XCTAssertFalse(redacted.contains("k3y-pass"), redacted)
            XCTAssertFalse(redacted.contains("password"), redacted)
            for shown in ["host=db.internal", "port=5433", "user=app", "dbname=prod"] { XCTAssertTrue(redacted.contains(shown), "\(shown) in \(redacted)") }
        }
        XCTAssertThrowsError(try ConnectionOptions("host=x password='zz-secret-zz")) { error in
            XCTAssertFalse("\(error)".contains("zz-secret-zz"), "the rejected text is not echoed: \(error)")
        }
    }
}
