import XCTest
import PostgresClient
import Common
@testable import DRKit

final class ChangeSegmentTests: XCTestCase {
    func testCommitTimesParseEveryAcceptedFormToTheSameMicrosecond() throws {
        let expected = try XCTUnwrap(CommitTime.parse("2026-12-04T20:06:58.704019Z"))
        for form in ["2026-12-04 20:06:58.704019+00", "2026-12-04T21:06:58.704019+01:00", "2026-12-04T15:36:58.704019-0430", "2026-12-04 21:06:58.704019+01"] {
            XCTAssertEqual(CommitTime.parse(form), expected, form)
        }
        XCTAssertEqual(CommitTime.iso8601(expected), "2026-12-04T20:06:58.704019Z")
        XCTAssertEqual(CommitTime.parse("2026-12-04T20:06:58Z").map { expected - $0 }, 704_019)
        // Agrees with Foundation to the millisecond, across leap days and the epoch.
        for text in ["2000-01-01T00:00:00Z", "2024-02-29T23:59:59.999Z", "1999-12-31T23:59:59.5Z", "2100-03-01T12:00:00Z"] {
            let micros = try XCTUnwrap(CommitTime.parse(text), text)
            XCTAssertEqual(CommitTime.date(micros).timeIntervalSince1970, try XCTUnwrap(Timestamps.parse(text)).timeIntervalSince1970, accuracy: 0.001, text)
            XCTAssertEqual(CommitTime.parse(CommitTime.iso8601(micros)), micros)
            XCTAssertEqual(CommitTime.parseCompact(CommitTime.compact(micros)), micros)
        }
        for bad in ["2026-12-04T20:06:58", "2026-12-04", "2026-13-01T00:00:00Z", "yesterday", "2026-12-04T20:06:58.Z", "2026-12-04T20:06:58Zjunk"] {
            XCTAssertNil(CommitTime.parse(bad), "a time without a zone or malformed is refused: \(bad)")
        }
    }

    func testSegmentNamesCarryWhatListingNeedsAndSortByNumber() throws {
        let name = SegmentName(number: 12, startPosition: LSN(0x1_0000_0000), endPosition: LSN(0x1_0000_0400), lastCommit: 123_456_789)
        let object = "stream/L/" + name.objectName(codec: .default, encrypted: true)
        XCTAssertTrue(object.hasSuffix(".changes.zst.enc"), object)
        XCTAssertEqual(SegmentName(objectName: object), name)
        XCTAssertNil(SegmentName(objectName: "stream/L/segments/.0000000012-x.changes.zst.partial-1"))
        XCTAssertLessThan(SegmentName(number: 2, startPosition: .zero, endPosition: .zero, lastCommit: 0), name)
    }

    func testContentRoundTripsAndTruncationIsRefused() throws {
        let header = Self.header(number: 1, previous: nil, start: LSN(10), end: LSN(20))
        var messages: [UInt8] = []
        ChangeSegment.appendFrame([UInt8(ascii: "B"), 1, 2], to: &messages)
        ChangeSegment.appendFrame([UInt8(ascii: "C")], to: &messages)
        let bytes = try ChangeSegment.encode(header: header, messages: messages)
        let decoded = try ChangeSegment.decode(bytes, name: "s")
        XCTAssertEqual(decoded.header, header)
        XCTAssertEqual(decoded.messages.map(Array.init), [[UInt8(ascii: "B"), 1, 2], [UInt8(ascii: "C")]])
        XCTAssertThrowsError(try ChangeSegment.decode(Array(bytes.dropLast()), name: "s"))
        XCTAssertThrowsError(try ChangeSegment.decode(Array(bytes.dropFirst()), name: "s"))
    }

    func testChainRefusesAGapAReplacedSegmentAndAWrongStart() throws {
        let lineage = StreamLineage(lineage: "L", database: "d", systemIdentifier: "1", databaseOid: nil, serverVersion: "15", slot: "s",
                                    publication: "p", startPosition: LSN(10), createdAt: Date(), compression: .init(algorithm: "zstd", level: 1),
                                    encrypted: false, keyFingerprint: nil)
        func stored(_ number: Int, _ start: UInt64, _ end: UInt64) -> StoredSegment {
            StoredSegment(key: "stream/L/segments/\(number)", size: 1, name: SegmentName(number: number, startPosition: LSN(start), endPosition: LSN(end), lastCommit: 0))
        }
        var chain = StreamArchive.ChainCheck(lineage: lineage)
        try chain.accept(stored(1, 10, 20), header: Self.header(number: 1, previous: nil, start: LSN(10), end: LSN(20)), sha256: "h1")
        try chain.accept(stored(2, 20, 30), header: Self.header(number: 2, previous: "h1", start: LSN(20), end: LSN(30)), sha256: "h2")
        var gap = chain
        XCTAssertThrowsError(try gap.accept(stored(4, 30, 40), header: Self.header(number: 4, previous: "h3", start: LSN(30), end: LSN(40)), sha256: "h4")) {
            XCTAssertTrue("\($0)".contains("segment 3 is missing"), "\($0)")
        }
        var replaced = chain
        XCTAssertThrowsError(try replaced.accept(stored(3, 30, 40), header: Self.header(number: 3, previous: "other", start: LSN(30), end: LSN(40)), sha256: "h3"))
        var first = StreamArchive.ChainCheck(lineage: lineage)
        XCTAssertThrowsError(try first.accept(stored(1, 11, 20), header: Self.header(number: 1, previous: nil, start: LSN(11), end: LSN(20)), sha256: "h1"))
        XCTAssertThrowsError(try StreamArchive.checkNumbering([stored(1, 10, 20), stored(3, 30, 40)], lineage: "L"))
        XCTAssertNoThrow(try StreamArchive.checkNumbering([stored(1, 10, 20), stored(2, 20, 30)], lineage: "L"))
    }

    func testSlotNamesAreValidAndDistinctForEveryDatabaseName() {
        XCTAssertEqual(StreamSource.objectName(for: "shop"), "drkit_shop")
        let odd = ["Shop", "shop-eu", "shop eu", "ünï", String(repeating: "x", count: 63)]
        let names = odd.map(StreamSource.objectName)
        XCTAssertEqual(Set(names).count, odd.count)
        for name in names {
            XCTAssertLessThanOrEqual(name.utf8.count, 63, name)
            XCTAssertTrue(name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }, name)
        }
    }

    static func header(number: Int, previous: String?, start: LSN, end: LSN) -> SegmentHeader {
        SegmentHeader(lineage: "L", database: "d", number: number, previousObject: previous.map { "stream/L/\($0)" }, previousSHA256: previous,
                      startPosition: start, endPosition: end, firstCommit: 1, lastCommit: 2, transactions: 1, changes: 0, relations: [],
                      sequences: [SequenceValue(schema: "public", name: "s", lastValue: "5")], schemaChanges: [],
                      writtenAt: Date(timeIntervalSince1970: 1_800_000_000))
    }
}
