import Foundation
internal import CLibPQ

/// A WAL position: PostgreSQL's `pg_lsn`, written `XXXXXXXX/XXXXXXXX` (hex, high and low 32 bits).
public struct LSN: Comparable, Hashable, Sendable, CustomStringConvertible, Codable {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...8).contains(parts[0].count), (1...8).contains(parts[1].count),
              let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16) else { return nil }
        value = high << 32 | low
    }

    public static let zero = LSN(0)
    public var description: String { String(format: "%X/%X", UInt32(value >> 32), UInt32(value & 0xFFFF_FFFF)) }
    /// Sixteen hex digits: sorts as the position does (object names).
    public var fixedWidth: String { String(format: "%016llX", value) }
    public static func < (a: LSN, b: LSN) -> Bool { a.value < b.value }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let lsn = LSN(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad LSN \(text)"))
        }
        self = lsn
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A connection in logical replication mode (`replication=database`): the walsender's commands
/// (IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT, START_REPLICATION) and plain SQL, then the COPY BOTH
/// stream of WAL data and keepalives. One thread uses it at a time.
public final class ReplicationConnection {
    private let connection: Connection
    private var streaming = false

    public init(conninfo: String) throws {
        var options = try ConnectionOptions(conninfo)
        options["replication"] = "database"
        connection = try Connection(conninfo: options.conninfo)
    }

    public var serverVersionNumber: Int { connection.serverVersionNumber }

    @discardableResult
    public func execute(_ command: String) throws -> QueryResult { try connection.execute(command) }

    public struct SystemIdentity: Sendable {
        public var systemIdentifier: String
        public var timeline: Int
        public var position: LSN
    }

    public func identifySystem() throws -> SystemIdentity {
        let row = try connection.execute("IDENTIFY_SYSTEM").rows[0]
        guard let position = row[2].flatMap(LSN.init) else {
            throw PostgresError(.protocolViolation, "IDENTIFY_SYSTEM returned no WAL position")
        }
        return SystemIdentity(systemIdentifier: row[0] ?? "", timeline: Int(row[1] ?? "") ?? 0, position: position)
    }

    public struct CreatedSlot: Sendable {
        public var consistentPoint: LSN
        /// The exported snapshot, valid until the next command on this connection.
        public var snapshot: String?
    }

    /// Creates a logical slot with the built-in pgoutput plugin. With `exportSnapshot` the snapshot of
    /// its consistent point is exported: a transaction importing it sees exactly the transactions that
    /// committed before the first one the slot decodes.
    /// `failover`: on PostgreSQL 17+, a permanent slot that standbys with `sync_replication_slots`
    /// keep in step, so that a promoted standby still has it (ignored before 17, and for temporary slots).
    public func createLogicalSlot(_ name: String, temporary: Bool, exportSnapshot: Bool, failover: Bool = false) throws -> CreatedSlot {
        let snapshot = exportSnapshot ? "export" : "nothing"
        let failoverOption = failover && !temporary && connection.serverVersionNumber >= 170000 ? ", FAILOVER true" : ""
        let command = connection.serverVersionNumber >= 150000
            ? "CREATE_REPLICATION_SLOT \(Connection.quoteIdentifier(name))\(temporary ? " TEMPORARY" : "") LOGICAL pgoutput (SNAPSHOT '\(snapshot)'\(failoverOption))"
            : "CREATE_REPLICATION_SLOT \(Connection.quoteIdentifier(name))\(temporary ? " TEMPORARY" : "") LOGICAL pgoutput \(exportSnapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT")"
        let row = try connection.execute(command).rows[0]
        guard let point = row[1].flatMap(LSN.init) else {
            throw PostgresError(.protocolViolation, "CREATE_REPLICATION_SLOT returned no consistent point")
        }
        return CreatedSlot(consistentPoint: point, snapshot: row[2])
    }

    /// Starts streaming from `slot` at `position` (the server starts at the slot's confirmed position
    /// when that is later). `options` go to the output plugin.
    public func startLogical(slot: String, from position: LSN, options: [(String, String)]) throws {
        let list = options.map { "\(Connection.quoteIdentifier($0.0)) \(Connection.quoteLiteral($0.1))" }.joined(separator: ", ")
        let command = "START_REPLICATION SLOT \(Connection.quoteIdentifier(slot)) LOGICAL \(position) (\(list))"
        guard let result = PQexec(connection.handle, command) else {
            throw PostgresError(.queryFailed, PostgresError.oneLine(String(cString: PQerrorMessage(connection.handle))))
        }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_BOTH else {
            throw Connection.error(from: result, code: .queryFailed)
        }
        streaming = true
    }

    public enum Message: Sendable {
        /// WAL data ('w'): one output plugin message.
        case data(walStart: LSN, walEnd: LSN, payload: [UInt8])
        /// The server's keepalive ('k'): everything before `walEnd` has been sent.
        case keepalive(walEnd: LSN, replyRequested: Bool)
    }

    /// The next message, or nil when none arrives within `timeout` seconds.
    public func next(timeout: Double) throws -> Message? {
        let handle = connection.handle
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 1)
            if length > 0, let buffer {
                defer { PQfreemem(buffer) }
                return try Self.parse(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
            }
            if length == -1 {
                streaming = false
                var message = "the server ended the replication stream"
                while let result = PQgetResult(handle) {
                    if PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_COPY_OUT {
                        message = PostgresError.oneLine(String(cString: PQresultErrorMessage(result)))
                    }
                    PQclear(result)
                }
                throw PostgresError(.copyFailed, message)
            }
            if length == -2 {
                streaming = false
                throw PostgresError(.copyFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
            }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return nil }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining, 3600) * 1000) + 1)
            if ready < 0 && errno != EINTR {
                throw PostgresError(.copyFailed, "waiting for the replication stream: \(String(cString: strerror(errno)))")
            }
            if ready == 0 { return nil }
            guard PQconsumeInput(handle) == 1 else {
                streaming = false
                throw PostgresError(.copyFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
            }
        }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> Message {
        var reader = WireReader(bytes)
        switch try reader.byte() {
        case UInt8(ascii: "w"):
            let start = LSN(try reader.uint64())
            let end = LSN(try reader.uint64())
            _ = try reader.uint64()  // the server's send time
            return .data(walStart: start, walEnd: end, payload: reader.rest())
        case UInt8(ascii: "k"):
            let end = LSN(try reader.uint64())
            _ = try reader.uint64()
            return .keepalive(walEnd: end, replyRequested: try reader.byte() == 1)
        case let other:
            throw PostgresError(.protocolViolation, "unknown replication message type \(other)")
        }
    }

    /// Standby status update ('r'): the server may discard WAL up to `flushed` for this slot.
    public func sendStatus(written: LSN, flushed: LSN, applied: LSN) throws {
        var message: [UInt8] = [UInt8(ascii: "r")]
        for value in [written.value, flushed.value, applied.value, UInt64(bitPattern: PostgresTime.now())] {
            withUnsafeBytes(of: value.bigEndian) { message.append(contentsOf: $0) }
        }
        message.append(0)
        let handle = connection.handle
        let sent = message.withUnsafeBytes { PQputCopyData(handle, $0.baseAddress!.assumingMemoryBound(to: CChar.self), Int32($0.count)) }
        guard sent == 1, PQflush(handle) == 0 else {
            throw PostgresError(.copyFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
        }
    }

    /// Ends the stream cleanly (CopyDone), after a last status update the caller sent.
    public func stop() {
        guard streaming else { return }
        streaming = false
        let handle = connection.handle
        guard PQputCopyEnd(handle, nil) == 1 else { return }
        _ = PQflush(handle)
        // Drain what the server still sends until it answers the CopyDone.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 0)
            if let buffer { PQfreemem(buffer) }
            if length < 0 { break }
        }
        while let result = PQgetResult(handle) { PQclear(result) }
    }
}

/// PostgreSQL's timestamps on the wire: microseconds since 2000-01-01 00:00:00 UTC.
public enum PostgresTime {
    public static let epochOffset: Double = 946_684_800

    public static func now() -> Int64 { microseconds(Date()) }

    public static func microseconds(_ date: Date) -> Int64 {
        Int64(((date.timeIntervalSince1970 - epochOffset) * 1_000_000).rounded())
    }

    public static func date(_ microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000 + epochOffset)
    }
}

/// Big-endian reads of a protocol message.
struct WireReader {
    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ buffer: UnsafeRawBufferPointer) { bytes = [UInt8](buffer) }
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func need(_ count: Int) throws {
        guard count >= 0, offset + count <= bytes.count else {
            throw PostgresError(.protocolViolation, "a replication message ends early (needs \(count) more bytes at \(offset) of \(bytes.count))")
        }
    }

    mutating func byte() throws -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint16() throws -> UInt16 { try bigEndian() }
    mutating func uint32() throws -> UInt32 { try bigEndian() }
    mutating func uint64() throws -> UInt64 { try bigEndian() }

    private mutating func bigEndian<T: FixedWidthInteger & UnsignedInteger>() throws -> T {
        let size = MemoryLayout<T>.size
        try need(size)
        var value: T = 0
        for i in 0..<size { value = value << 8 | T(bytes[offset + i]) }
        offset += size
        return value
    }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        try need(count)
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// A NUL-terminated string.
    mutating func cString() throws -> String {
        guard let end = bytes[offset...].firstIndex(of: 0) else {
            throw PostgresError(.protocolViolation, "a replication message has an unterminated string")
        }
        defer { offset = end + 1 }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    func rest() -> [UInt8] { Array(bytes[offset...]) }
}
