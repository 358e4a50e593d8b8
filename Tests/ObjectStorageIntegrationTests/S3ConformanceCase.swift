import XCTest
import Foundation
import Common
@testable import ObjectStorage
import TestSupport

/// S3Store against an S3 server. Small parts and pages, so multipart uploads and ListObjectsV2
/// pagination are exercised by the same contracts.
class S3ConformanceCase: XCTestCase {
    /// moto here; Ceph RGW in the subclass.
    func server() throws -> TestServices.S3 { try TestServices.s3() }

    func store(endpoint: String? = nil) throws -> S3Store {
        let s3 = try server()
        var config = try S3Configuration.resolve(url: "s3://\(s3.bucket)/store-conformance", environment: s3.environment(endpoint: endpoint))
        config.partSize = 5 << 20
        config.uploadConcurrency = 2
        config.listPageSize = 3
        config.deleteBatchSize = 4
        return S3Store(configuration: config)
    }

    func checkEveryContract() throws {
        try StoreConformance(try store(), largeObjectSize: 11 << 20).runAll()
    }

    /// The same contracts with 20% of requests faulted (errors, throttling, resets, truncated answers,
    /// delays, resets of reused connections): retries must make every fault invisible.
    func checkEveryContractThroughInjectedFaults() throws {
        let proxy = try FaultProxy(upstreamPort: try server().port, plan: .init(rate: 0.2, seed: 20261130), lifetime: 300)
        defer { proxy.stop() }
        try StoreConformance(try store(endpoint: proxy.endpoint), largeObjectSize: 11 << 20).runAll()
        XCTAssertGreaterThanOrEqual(proxy.injected.values.reduce(0, +), 10, "faults were injected: \(proxy.injected)")
    }
}
