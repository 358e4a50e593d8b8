import XCTest
import PostgresClient
import ObjectStorage
@testable import DRKit

final class SecretMaskTests: XCTestCase {
    func testKnownSecretsAndTheirURLFormsAreMasked() {
        let mask = SecretMask(SecretMask.secrets(ofConninfo: "host=db user=app password=p@ss/w0rd sslpassword=k3y-pass")
                              + SecretMask.secrets(ofEnvironment: ["DRKIT_KEY": "base64keymaterial==", "APP_DB_URL": "postgres://u:url%20secret@h/db",
                                                                   "PATH": "/usr/bin", "AWS_SECRET_ACCESS_KEY": "abcd1234"]))
        let text = "url=postgresql://app:p%40ss%2Fw0rd@db/x pw=p@ss/w0rd ssl=k3y-pass key=base64keymaterial== s=url secret aws=abcd1234 path=/usr/bin"
        let masked = mask.apply(text)
        for secret in ["p%40ss%2Fw0rd", "p@ss/w0rd", "k3y-pass", "base64keymaterial==", "url secret", "abcd1234"] {
            XCTAssertFalse(masked.contains(secret), "\(secret) in \(masked)")
        }
        XCTAssertTrue(masked.contains("path=/usr/bin"), "ordinary values stay: \(masked)")
        XCTAssertEqual(SecretMask([nil, "", "ab"]).apply("ab abc"), "ab abc", "values too short to be secrets are not masked")
    }
}
