import XCTest
import Foundation
import Common
@testable import ObjectStorage
import TestSupport

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
