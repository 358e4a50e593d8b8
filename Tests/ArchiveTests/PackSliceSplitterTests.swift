import XCTest
import Common
@testable import Archive

final class PackSliceSplitterTests: XCTestCase {
    private final class Collect: ByteSink {
        var bytes: [UInt8] = []
        var finished = false
        func write(_ b: UnsafeRawBufferPointer) throws { bytes += b }
        func finish() throws { finished = true }
    }

    private let texts = ["1\ta\n2\tb\n", "", "3\t\\N\n", "", ""]
    private var slices: [PackSlice] {
        texts.enumerated().map { PackSlice(schema: "s", name: "t\($0)", plainBytes: Int64($1.utf8.count), rows: Int64($1.filter { $0 == "\n" }.count)) }
    }

    private func split(_ stream: [UInt8], at cut: Int, slices: [PackSlice]) throws -> [Int: Collect] {
        var opened: [Int: Collect] = [:]
        let splitter = PackSliceSplitter(slices: slices) { index in
            let sink = Collect()
            opened[index] = sink
            return sink
        }
        try stream[..<cut].withUnsafeBytes { try splitter.write($0) }
        try stream[cut...].withUnsafeBytes { try splitter.write($0) }
        try splitter.finish()
        return opened
    }

    func testEverySplitPointGivesEachTableItsOwnBytes() throws {
        let stream = Array(texts.joined().utf8)
        for cut in 0...stream.count {
            let opened = try split(stream, at: cut, slices: slices)
            XCTAssertEqual(opened.keys.sorted(), [0, 2], "empty slices open nothing (cut \(cut))")
            XCTAssertEqual(opened[0].map { String(decoding: $0.bytes, as: UTF8.self) }, texts[0])
            XCTAssertEqual(opened[2].map { String(decoding: $0.bytes, as: UTF8.self) }, texts[2])
            XCTAssertTrue(opened.values.allSatisfy(\.finished), "each slice's sink is finished when it ends")
        }
    }

    func testASkippedSliceIsStillCounted() throws {
        let splitter = PackSliceSplitter(slices: slices) { $0 == 0 ? nil : Collect() }
        try Array(texts.joined().utf8).withUnsafeBytes { try splitter.write($0) }
        try splitter.finish()
        var wrong = slices
        wrong[0].rows = 3
        let checked = PackSliceSplitter(slices: wrong) { _ in nil }
        XCTAssertThrowsError(try Array(texts.joined().utf8).withUnsafeBytes { try checked.write($0) }) { error in
            XCTAssertTrue("\(error)".contains("s.t0 holds 2 rows, the manifest says 3"), "\(error)")
        }
    }

    func testShortAndLongStreamsAreRefused() throws {
        let stream = Array(texts.joined().utf8)
        let short = PackSliceSplitter(slices: slices) { _ in nil }
        try stream.dropLast(2).withUnsafeBytes { try short.write($0) }
        XCTAssertThrowsError(try short.finish()) { XCTAssertEqual(($0 as? ArchiveError)?.kind, .truncated) }
        let long = PackSliceSplitter(slices: slices) { _ in nil }
        XCTAssertThrowsError(try (stream + Array("4\tx\n".utf8)).withUnsafeBytes { try long.write($0) }) {
            XCTAssertEqual(($0 as? ArchiveError)?.kind, .malformed)
        }
    }
}
