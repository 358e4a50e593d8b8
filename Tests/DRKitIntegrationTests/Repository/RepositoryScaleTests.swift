import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

/// Finding backups costs O(backups) requests, not O(objects): counted through the proxy.
final class RepositoryScaleTests: XCTestCase {
    func testLatestReadsOneObjectPerBackupNotEveryObject() throws {
        let s3 = try TestServices.s3()
        let prefix = "scale-\(UUID().uuidString.prefix(8).lowercased())"
        var config = try S3Configuration.resolve(url: "s3://\(s3.bucket)/\(prefix)", environment: s3.environment())
        config.listPageSize = 50
        let direct = Repository(store: S3Store(configuration: config))
        // 100 backups of 20 objects each (2,100 objects), written 8 at a time.
        let backups = 100, objectsPerBackup = 20
        let base = Date(timeIntervalSince1970: 1_790_000_000)
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for n in stride(from: worker, to: backups, by: 8) {
                do { try SyntheticBackup.write(at: base.addingTimeInterval(Double(n) * 3600), dataObjects: objectsPerBackup - 2, into: direct) } catch {
                    failures.withLock { $0.append("\(n): \(error)") }
                }
            }
        }
        XCTAssertEqual(failures.current, [])

        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 0, faults: []))
        defer { proxy.stop() }
        var counted = try S3Configuration.resolve(url: "s3://\(s3.bucket)/\(prefix)", environment: s3.environment(endpoint: proxy.endpoint))
        counted.listPageSize = 50
        let latest = try Repository(store: S3Store(configuration: counted)).resolve("latest")
        XCTAssertEqual(latest.summary.snapshotTime, base.addingTimeInterval(Double(backups - 1) * 3600))
        // 100 manifest reads and 2 folder-listing pages; listing every object would add 42 pages.
        XCTAssertLessThanOrEqual(proxy.requests, backups + 5, "requests: \(proxy.requests)")
    }
}
