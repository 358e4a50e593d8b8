import XCTest
import Foundation
import Common
@testable import ObjectStorage
import TestSupport

/// The same suite on Ceph RGW, a real S3 implementation (scripts/rgw-server.sh).
final class RGWStoreConformanceTests: S3ConformanceCase {
    override func server() throws -> TestServices.S3 { try TestServices.rgw() }
    func testRGWStoreKeepsEveryContract() throws { try checkEveryContract() }
    func testRGWStoreKeepsEveryContractThroughInjectedFaults() throws { try checkEveryContractThroughInjectedFaults() }
}
