import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

/// Every S3 test again, fault tests included, on Ceph RGW (scripts/rgw-server.sh): a mock's behaviour
/// is not proof of a real server's. XCTest runs the inherited tests with this class's server.
final class RGWS3Tests: S3Tests {
    override func server() throws -> TestServices.S3 { try TestServices.rgw() }
    // Declared here so that XCTest on Linux discovers this class; the other inherited tests run too.
    override func testBackupAndRestoreSurviveInjectedFaults() throws { try super.testBackupAndRestoreSurviveInjectedFaults() }
    override func testUploadsSurviveResetsOfReusedConnections() throws { try super.testUploadsSurviveResetsOfReusedConnections() }
    override func testStoreWritesSurviveResetsOfReusedConnections() throws { try super.testStoreWritesSurviveResetsOfReusedConnections() }
    override func testFaultsThatNeverClearFailCleanlyAndAbortUploads() throws { try super.testFaultsThatNeverClearFailCleanlyAndAbortUploads() }
    override func testALostCreateMultipartUploadAnswerLeavesNoOrphanUpload() throws { try super.testALostCreateMultipartUploadAnswerLeavesNoOrphanUpload() }
    override func testObjectLockedBackupsAreRetainedByForgetAndRemovedAfterTheLock() throws {
        try super.testObjectLockedBackupsAreRetainedByForgetAndRemovedAfterTheLock()
    }
}
