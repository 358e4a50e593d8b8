import XCTest
@testable import Archive
import Common

final class StreamingAEADTests: XCTestCase {
    let key = SecureRandom.bytes(32)
    let segment = StreamingAEAD.defaultSegmentSize

    func seal(_ plain: [UInt8], name: String = "b/obj") throws -> [UInt8] {
        try StreamingAEAD.seal(plain, dataKey: key, objectName: name)
    }

    func open(_ sealed: [UInt8], name: String = "b/obj", key: [UInt8]? = nil) throws -> [UInt8] {
        try StreamingAEAD.open(sealed, dataKey: key ?? self.key, objectName: name)
    }

    func assertFails(_ kind: ArchiveError.Kind, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual((error as? ArchiveError)?.kind, kind, "\(error)", file: file, line: line)
        }
    }

    func testRoundTripAtSegmentBoundaries() throws {
        for size in [0, 1, segment - 1, segment, segment + 1, 3 * segment, 3 * segment + 17] {
            let plain = SecureRandom.bytes(size)
            let sealed = try seal(plain)
            let segments = max(1, (size + segment - 1) / segment)
            XCTAssertEqual(sealed.count, StreamingAEAD.headerSize + size + segments * AESGCM.tagSize, "size \(size)")
            XCTAssertEqual(try open(sealed), plain, "size \(size)")
        }
    }

    func testWritesInOddPiecesGiveTheSameStreamFormat() throws {
        let plain = SecureRandom.bytes(200_000)
        let sink = BufferSink()
        let sealer = try StreamSealer(dataKey: key, objectName: "b/obj", next: sink)
        var offset = 0
        var step = 1
        while offset < plain.count {
            let end = min(plain.count, offset + step)
            try sealer.write(Array(plain[offset..<end]))
            offset = end
            step = step * 3 + 1
        }
        try sealer.finish()
        // Feed the opener in small pieces too.
        let out = BufferSink()
        let opener = StreamOpener(dataKey: key, objectName: "b/obj", next: out)
        for start in stride(from: 0, to: sink.bytes.count, by: 4093) {
            try opener.write(Array(sink.bytes[start..<min(start + 4093, sink.bytes.count)]))
        }
        try opener.finish()
        XCTAssertEqual(out.bytes, plain)
    }

    func testEveryFlippedBitPositionClassIsDetected() throws {
        let sealed = try seal(SecureRandom.bytes(2 * segment + 100))
        for position in [0, 9, 20, StreamingAEAD.headerSize, StreamingAEAD.headerSize + segment + 3, sealed.count - 1] {
            var tampered = sealed
            tampered[position] ^= 0x40
            XCTAssertThrowsError(try open(tampered), "flip at \(position)")
        }
    }

    func testTruncationAtASegmentBoundaryIsDetected() throws {
        let sealed = try seal(SecureRandom.bytes(3 * segment))
        let oneSegment = segment + AESGCM.tagSize
        let truncated = Array(sealed.prefix(StreamingAEAD.headerSize + 2 * oneSegment))
        assertFails(.authenticationFailed) { _ = try open(truncated) }
        assertFails(.truncated) { _ = try open(Array(sealed.prefix(10))) }
        assertFails(.truncated) { _ = try open(Array(sealed.prefix(StreamingAEAD.headerSize + 5))) }
    }

    func testReorderedSegmentsAreDetected() throws {
        let sealed = try seal(SecureRandom.bytes(3 * segment + 5))
        let h = StreamingAEAD.headerSize, s = segment + AESGCM.tagSize
        let swapped = Array(sealed[0..<h]) + Array(sealed[(h + s)..<(h + 2 * s)]) + Array(sealed[h..<(h + s)]) + Array(sealed[(h + 2 * s)...])
        assertFails(.authenticationFailed) { _ = try open(swapped) }
    }

    func testObjectNameAndKeyAreBound() throws {
        let sealed = try seal(Array("data".utf8), name: "b/one")
        assertFails(.authenticationFailed) { _ = try open(sealed, name: "b/two") }
        assertFails(.authenticationFailed) { _ = try open(sealed, name: "b/one", key: SecureRandom.bytes(32)) }
    }
}
