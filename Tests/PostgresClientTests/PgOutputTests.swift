import XCTest
@testable import PostgresClient

/// pgoutput protocol 1 messages built byte by byte as the documentation lays them out.
final class PgOutputTests: XCTestCase {
    private struct Message {
        var bytes: [UInt8] = []
        mutating func byte(_ value: Character) { bytes.append(value.asciiValue!) }
        mutating func u8(_ value: UInt8) { bytes.append(value) }
        mutating func u16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        mutating func u32(_ value: UInt32) { for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(value >> UInt32(shift) & 0xFF)) } }
        mutating func u64(_ value: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(value >> UInt64(shift) & 0xFF)) } }
        mutating func string(_ text: String) { bytes += Array(text.utf8) + [0] }
        mutating func text(_ value: String) { byte("t"); u32(UInt32(value.utf8.count)); bytes += Array(value.utf8) }
    }

    func testBeginRelationChangesAndCommitDecodeAsSent() throws {
        var begin = Message()
        begin.byte("B"); begin.u64(0x1_0000_0010); begin.u64(789_000_000); begin.u32(42)
        XCTAssertEqual(try PgOutput.decode(begin.bytes), .begin(finalLSN: LSN(0x1_0000_0010), commitTime: 789_000_000, xid: 42))

        var relation = Message()
        relation.byte("R"); relation.u32(16384); relation.string("public"); relation.string("t"); relation.byte("d"); relation.u16(2)
        relation.u8(1); relation.string("id"); relation.u32(23); relation.u32(UInt32(bitPattern: -1))
        relation.u8(0); relation.string("big"); relation.u32(25); relation.u32(UInt32(bitPattern: -1))
        guard case .relation(let decoded) = try PgOutput.decode(relation.bytes) else { return XCTFail("not a relation") }
        XCTAssertEqual(decoded.schema, "public")
        XCTAssertEqual(decoded.columns.map(\.name), ["id", "big"])
        XCTAssertEqual(decoded.columns.map(\.isKey), [true, false])
        XCTAssertEqual(decoded.columns[0].typeModifier, -1)

        var insert = Message()
        insert.byte("I"); insert.u32(16384); insert.byte("N"); insert.u16(2); insert.text("7"); insert.byte("n")
        XCTAssertEqual(try PgOutput.decode(insert.bytes), .insert(relation: 16384, new: [.text("7"), .null]))

        // An UPDATE of the key sends the old key first; an unchanged TOASTed value is 'u'.
        var update = Message()
        update.byte("U"); update.u32(16384); update.byte("K"); update.u16(2); update.text("7"); update.byte("n")
        update.byte("N"); update.u16(2); update.text("8"); update.byte("u")
        XCTAssertEqual(try PgOutput.decode(update.bytes), .update(relation: 16384, old: [.text("7"), .null], new: [.text("8"), .unchanged]))

        var delete = Message()
        delete.byte("D"); delete.u32(16384); delete.byte("O"); delete.u16(1); delete.text("tab\tnew\nline")
        XCTAssertEqual(try PgOutput.decode(delete.bytes), .delete(relation: 16384, old: [.text("tab\tnew\nline")]))

        var truncate = Message()
        truncate.byte("T"); truncate.u32(2); truncate.u8(3); truncate.u32(1); truncate.u32(2)
        XCTAssertEqual(try PgOutput.decode(truncate.bytes), .truncate(relations: [1, 2], cascade: true, restartIdentity: true))

        var commit = Message()
        commit.byte("C"); commit.u8(0); commit.u64(0x10); commit.u64(0x40); commit.u64(789_000_001)
        XCTAssertEqual(try PgOutput.decode(commit.bytes), .commit(commitLSN: LSN(0x10), endLSN: LSN(0x40), commitTime: 789_000_001))
    }

    func testTruncatedMessagesAreRefusedNotMisread() {
        var insert = Message()
        insert.byte("I"); insert.u32(1); insert.byte("N"); insert.u16(1); insert.byte("t"); insert.u32(10); insert.bytes += Array("short".utf8)
        XCTAssertThrowsError(try PgOutput.decode(insert.bytes))
        XCTAssertThrowsError(try PgOutput.decode([UInt8(ascii: "C"), 0, 1]))
        XCTAssertEqual(try PgOutput.decode([UInt8(ascii: "Y"), 0]), .other(UInt8(ascii: "Y")))
    }

    func testLSNTextRoundTripsAndOrders() throws {
        let lsn = try XCTUnwrap(LSN("16/B374D848"))
        XCTAssertEqual(lsn.value, 0x16_B374_D848)
        XCTAssertEqual(lsn.description, "16/B374D848")
        XCTAssertEqual(lsn.fixedWidth, "00000016B374D848")
        XCTAssertLessThan(try XCTUnwrap(LSN("0/FFFFFFFF")), try XCTUnwrap(LSN("1/0")))
        for bad in ["", "16", "16/", "/1", "G/1", "123456789/1", "1/2/3"] { XCTAssertNil(LSN(bad), bad) }
    }

    func testReplicationMessagesParse() throws {
        var data = Message()
        data.byte("w"); data.u64(5); data.u64(9); data.u64(0); data.bytes += [1, 2, 3]
        let parsed = try data.bytes.withUnsafeBytes { try ReplicationConnection.parse($0) }
        guard case .data(let start, let end, let payload) = parsed else { return XCTFail("not data") }
        XCTAssertEqual([start.value, end.value], [5, 9])
        XCTAssertEqual(payload, [1, 2, 3])
        var keepalive = Message()
        keepalive.byte("k"); keepalive.u64(77); keepalive.u64(0); keepalive.u8(1)
        guard case .keepalive(let walEnd, let reply) = try keepalive.bytes.withUnsafeBytes({ try ReplicationConnection.parse($0) }) else { return XCTFail("not a keepalive") }
        XCTAssertEqual(walEnd.value, 77)
        XCTAssertTrue(reply)
    }

    /// A transactional logical decoding message (`pg_logical_emit_message(true, ...)`), as pgoutput
    /// sends it with `messages 'true'`: flags, its LSN, the prefix, the content's length and bytes.
    func testLogicalMessageDecodesPrefixAndContent() throws {
        var message = Message()
        message.byte("M"); message.u8(1); message.u64(0x2_0000_0040); message.string("drkit.ddl")
        message.u32(5); message.bytes += Array("{\"a\"}".utf8)
        XCTAssertEqual(try PgOutput.decode(message.bytes), .message(transactional: true, prefix: "drkit.ddl", content: Array("{\"a\"}".utf8)))
        var truncated = message
        truncated.bytes.removeLast(2)
        XCTAssertThrowsError(try PgOutput.decode(truncated.bytes))
    }
}
