import XCTest
import Foundation
import Common
@testable import ObjectStorage
import TestSupport

final class S3StoreConformanceTests: S3ConformanceCase {
    func testS3StoreKeepsEveryContract() throws { try checkEveryContract() }
    func testS3StoreKeepsEveryContractThroughInjectedFaults() throws { try checkEveryContractThroughInjectedFaults() }
}
