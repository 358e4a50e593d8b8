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
