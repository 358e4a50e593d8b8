import XCTest
import Foundation
import Common
@testable import ObjectStorage
import TestSupport

/// The contracts in `ObjectStore`'s doc comment, checked against one store. Every store drkit ships
/// runs all of them (see the test classes below); a new store adds one class here.
struct StoreConformance {
    let store: ObjectStore
    /// Unique per run, so runs against a shared bucket never see each other's keys.
    let root: String
    /// Bytes that make the store use its multipart path, where it has one.
    var largeObjectSize = 3 << 20

    init(_ store: ObjectStore, largeObjectSize: Int = 3 << 20) {
        self.store = store
        self.root = "conformance-\(UUID().uuidString.prefix(8).lowercased())"
        self.largeObjectSize = largeObjectSize
    }

    func runAll(file: StaticString = #filePath, line: UInt = #line) throws {
        try roundTripsEmptySmallAndLargeObjects()
        try writesBecomeVisibleAtFinishOnly()
        try abortedWritesLeaveNothing()
        try listsEverythingUnderAPrefixInKeyOrder()
        try listsFoldersWithoutTheirObjects()
        try missingKeysAreNotFound()
        try rangesReadTheirBytes()
        try deleteIgnoresMissingKeys()
        try concurrentWritersDoNotInterfere()
        try store.delete(keys: try store.list(prefix: root + "/").map(\.key))
        XCTAssertEqual(try store.list(prefix: root + "/"), [], "cleaned up", file: file, line: line)
    }

    private func key(_ name: String) -> String { "\(root)/\(name)" }

    private func pattern(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 11)) }
    }

    func roundTripsEmptySmallAndLargeObjects() throws {
        let cases: [(String, [UInt8])] = [("empty", []), ("small", Array("hello, repository".utf8)), ("large", pattern(largeObjectSize))]
        for (name, bytes) in cases {
            let writer = try store.makeWriter(key: key("rt/\(name)"))
            for start in stride(from: 0, to: bytes.count, by: 100_003) { try writer.write(Array(bytes[start..<min(start + 100_003, bytes.count)])) }
            try writer.finish()
            XCTAssertEqual(try store.get(key: key("rt/\(name)")), bytes, "round trip of \(name)")
        }
        let listed = try store.list(prefix: key("rt/"))
        XCTAssertEqual(listed.map(\.key), ["empty", "large", "small"].map { key("rt/\($0)") })
        XCTAssertEqual(listed.map(\.size), [0, Int64(largeObjectSize), 17], "sizes as written")
    }

    func writesBecomeVisibleAtFinishOnly() throws {
        let writer = try store.makeWriter(key: key("atomic/object"))
        try writer.write(pattern(largeObjectSize / 2))
        XCTAssertEqual(try store.list(prefix: key("atomic/")), [], "nothing listed before finish")
        XCTAssertThrowsError(try store.get(key: key("atomic/object")), "nothing readable before finish") {
            XCTAssertEqual(($0 as? StorageError)?.kind, .notFound)
        }
        try writer.write(pattern(largeObjectSize / 2, seed: 9))
        try writer.finish()
        XCTAssertEqual(try store.list(prefix: key("atomic/")).map(\.size), [Int64(largeObjectSize / 2 * 2)])
    }

    func abortedWritesLeaveNothing() throws {
        let small = try store.makeWriter(key: key("abort/small"))
        try small.write([1, 2, 3])
        small.abort()
        let large = try store.makeWriter(key: key("abort/large"))
        try large.write(pattern(largeObjectSize))
        large.abort()
        XCTAssertEqual(try store.list(prefix: key("abort/")), [])
        if let listing = store as? IncompleteWriteListing {
            XCTAssertEqual(try listing.incompleteWrites().filter { $0.key.hasPrefix(root) }, [], "no upload or temporary file left")
        }
    }

    func listsEverythingUnderAPrefixInKeyOrder() throws {
        let names = ["b", "a/2", "a/10", "a/1", "a b", "a-c", "ü", "z/y/x", "a/1x"]
        for name in names.shuffled() { try store.put(key: key("list/\(name)"), bytes: Array(name.utf8)) }
        try store.put(key: key("listing-neighbour"), bytes: [0])
        let expected = names.map { key("list/\($0)") }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        XCTAssertEqual(try store.list(prefix: key("list/")).map(\.key), expected, "every key, byte order")
        XCTAssertEqual(try store.list(prefix: key("list/a/1")).map(\.key), [key("list/a/1"), key("list/a/10"), key("list/a/1x")])
        XCTAssertEqual(try store.list(prefix: key("list/nothing-here")), [])
        XCTAssertEqual(try store.get(key: key("list/ü")), Array("ü".utf8))
    }

    func listsFoldersWithoutTheirObjects() throws {
        for name in ["c/1", "a/1", "a/2/x", "a/2/y", "b/deep/er/1", "top-level-object"] {
            try store.put(key: key("folders/\(name)"), bytes: [1])
        }
        XCTAssertEqual(try store.listFolders(prefix: key("folders/")), ["a", "b", "c"], "folders only, in order, each once")
        XCTAssertEqual(try store.listFolders(prefix: key("folders/a/")), ["2"])
        XCTAssertEqual(try store.listFolders(prefix: key("folders/b/")), ["deep"])
        XCTAssertEqual(try store.listFolders(prefix: key("folders/c/")), [])
        XCTAssertEqual(try store.listFolders(prefix: key("no-such-folder/")), [])
    }

    func missingKeysAreNotFound() throws {
        for missing in [key("missing/object"), key("no-such-folder/at/all")] {
            XCTAssertThrowsError(try store.get(key: missing)) { error in
                XCTAssertEqual((error as? StorageError)?.kind, .notFound, "\(missing): \(error)")
            }
        }
    }

    func rangesReadTheirBytes() throws {
        let bytes = pattern(200_000)
        try store.put(key: key("range/object"), bytes: bytes)
        for range: Range<Int64> in [0..<1, 5..<17, 65_530..<131_090, 199_999..<200_000, 0..<200_000] {
            let sink = BufferSink()
            try store.read(key: key("range/object"), range: range, into: sink)
            XCTAssertEqual(sink.bytes, Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)]), "range \(range)")
            XCTAssertFalse(sink.finished, "read never finishes the sink")
        }
        let clamped = BufferSink()
        try store.read(key: key("range/object"), range: 199_990..<250_000, into: clamped)
        XCTAssertEqual(clamped.bytes, Array(bytes[199_990...]), "a range past the end stops at the last byte")
        XCTAssertThrowsError(try store.read(key: key("range/missing"), range: 0..<10, into: BufferSink())) {
            XCTAssertEqual(($0 as? StorageError)?.kind, .notFound)
        }
    }

    func deleteIgnoresMissingKeys() throws {
        try store.put(key: key("delete/a"), bytes: [1])
        try store.put(key: key("delete/b"), bytes: [2])
        try store.delete(keys: [key("delete/a"), key("delete/never-existed"), key("nowhere/x")])
        try store.delete(keys: [])
        XCTAssertEqual(try store.list(prefix: key("delete/")).map(\.key), [key("delete/b")])
        XCTAssertThrowsError(try store.get(key: key("delete/a")))
    }

    func concurrentWritersDoNotInterfere() throws {
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { n in
            do {
                try store.put(key: key("concurrent/\(n)"), bytes: pattern(50_000 + n, seed: UInt8(n)))
                if try store.get(key: key("concurrent/\(n)")) != pattern(50_000 + n, seed: UInt8(n)) { failures.withLock { $0.append("\(n): bytes differ") } }
            } catch {
                failures.withLock { $0.append("\(n): \(error)") }
            }
        }
        XCTAssertEqual(failures.current, [])
        XCTAssertEqual(try store.list(prefix: key("concurrent/")).count, 8)
    }
}

final class FileStoreConformanceTests: XCTestCase {
    func testFileStoreKeepsEveryContract() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try StoreConformance(try FileStore(root: directory, create: true)).runAll()
    }

    /// Writers that leave their folder's sync to later (a backup's objects) are just as atomic: nothing
    /// under the key until finished, nothing at all when aborted, readable once finished.
    func testDeferredDurabilityKeepsVisibilityAtomic() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("deferred-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try FileStore(root: directory, create: true)
        let writer = try store.makeWriter(key: "b/data/1", lock: nil, syncFolder: false)
        try Array("half".utf8).withUnsafeBytes { try writer.write($0) }
        XCTAssertEqual(try store.list(prefix: "b/"), [], "not visible before it is finished")
        try Array(" and whole".utf8).withUnsafeBytes { try writer.write($0) }
        try writer.finish()
        let aborted = try store.makeWriter(key: "b/data/2", lock: nil, syncFolder: false)
        try Array("never".utf8).withUnsafeBytes { try aborted.write($0) }
        aborted.abort()
        try store.syncFolders(under: "b")
        XCTAssertEqual(try store.list(prefix: "b/").map(\.key), ["b/data/1"])
        let sink = BufferSink()
        try store.read(key: "b/data/1", range: nil, into: sink)
        XCTAssertEqual(String(decoding: sink.bytes, as: UTF8.self), "half and whole")
    }
}

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

final class S3StoreConformanceTests: S3ConformanceCase {
    func testS3StoreKeepsEveryContract() throws { try checkEveryContract() }
    func testS3StoreKeepsEveryContractThroughInjectedFaults() throws { try checkEveryContractThroughInjectedFaults() }
}

/// The same suite on Ceph RGW, a real S3 implementation (scripts/rgw-server.sh).
final class RGWStoreConformanceTests: S3ConformanceCase {
    override func server() throws -> TestServices.S3 { try TestServices.rgw() }
    func testRGWStoreKeepsEveryContract() throws { try checkEveryContract() }
    func testRGWStoreKeepsEveryContractThroughInjectedFaults() throws { try checkEveryContractThroughInjectedFaults() }
}
