import Foundation
internal import CLibPQ

/// One libpq connection. Blocking calls; use one connection per thread.
public final class Connection {
    let handle: OpaquePointer

    /// `conninfo` is a libpq keyword/value string or a postgres:// URL.
    public init(conninfo: String) throws {
        guard let handle = PQconnectdb(conninfo) else {
            throw PostgresError(.connectionFailed, "libpq could not allocate a connection")
        }
        self.handle = handle
        guard PQstatus(handle) == CONNECTION_OK else {
            // deinit runs for a fully initialised instance whose init throws; it calls PQfinish.
            let message = PostgresError.oneLine(String(cString: PQerrorMessage(handle)))
            throw PostgresError(.connectionFailed, message)
        }
    }

    deinit { PQfinish(handle) }

    public var serverVersionNumber: Int { Int(PQserverVersion(handle)) }
    public var database: String { String(cString: PQdb(handle)) }

    /// Runs one or more statements with the simple query protocol.
    @discardableResult
    public func execute(_ sql: String) throws -> QueryResult {
        let result = PQexec(handle, sql)
        return try consume(result, sql: sql)
    }

    /// Runs one statement with text parameters ($1, $2, ...).
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> QueryResult {
        var cStrings: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.flatMap { strdup($0) } }
        defer { cStrings.forEach { free($0) } }
        let result = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) { values in
                PQexecParams(handle, sql, Int32(parameters.count), nil, parameters.isEmpty ? nil : values, nil, nil, 0)
            }
        }
        return try consume(result, sql: sql)
    }

    /// A parameter of `queryBinary`: text, or raw bytes sent in binary format (bytea without escaping).
    public enum Parameter {
        case text(String)
        case bytes([UInt8])
    }

    /// Runs one statement and returns its values in binary format (a bytea is its raw bytes, an oid
    /// four big-endian bytes): no hex text in either direction, for bulk binary data such as large objects.
    public func queryBinary(_ sql: String, _ parameters: [Parameter] = []) throws -> [[[UInt8]?]] {
        var owned: [UnsafeMutableRawPointer?] = []
        defer { owned.forEach { free($0) } }
        var lengths: [Int32] = []
        var formats: [Int32] = []
        for parameter in parameters {
            switch parameter {
            case .text(let text):
                owned.append(UnsafeMutableRawPointer(strdup(text)))
                lengths.append(0)
                formats.append(0)
            case .bytes(let bytes):
                let buffer = malloc(max(bytes.count, 1))!
                bytes.withUnsafeBytes { if let base = $0.baseAddress { buffer.copyMemory(from: base, byteCount: bytes.count) } }
                owned.append(buffer)
                lengths.append(Int32(bytes.count))
                formats.append(1)
            }
        }
        let values: [UnsafePointer<CChar>?] = owned.map { $0.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) } }
        guard let result = PQexecParams(handle, sql, Int32(parameters.count), nil, parameters.isEmpty ? nil : values,
                                        lengths, formats, 1) else {
            throw PostgresError(.queryFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return []
        case PGRES_TUPLES_OK:
            let fields = PQnfields(result)
            return (0..<PQntuples(result)).map { row in
                (0..<fields).map { column in
                    guard PQgetisnull(result, row, column) == 0, let value = PQgetvalue(result, row, column) else { return nil }
                    return [UInt8](UnsafeRawBufferPointer(start: value, count: Int(PQgetlength(result, Int32(row), Int32(column)))))
                }
            }
        default:
            throw Connection.error(from: result, code: .queryFailed)
        }
    }

    /// Runs several statements in one round trip (simple query protocol) and returns each one's row
    /// count (INSERT/UPDATE/DELETE; nil for others), in order. The first failing statement throws, and
    /// no later one runs.
    public func executeCountingRows(_ sql: String) throws -> [Int64?] {
        guard PQsendQuery(handle, sql) == 1 else {
            throw PostgresError(.queryFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
        }
        var counts: [Int64?] = []
        var firstError: PostgresError?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                let text = String(cString: PQcmdTuples(result))
                counts.append(text.isEmpty ? nil : Int64(text))
            default:
                if firstError == nil { firstError = Connection.error(from: result, code: .queryFailed) }
            }
        }
        if let firstError { throw firstError }
        return counts
    }

    private func consume(_ result: OpaquePointer?, sql: String) throws -> QueryResult {
        guard let result else {
            throw PostgresError(.queryFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return QueryResult(columns: [], rows: [])
        case PGRES_TUPLES_OK:
            return QueryResult(result)
        default:
            throw Connection.error(from: result, code: .queryFailed)
        }
    }

    static func error(from result: OpaquePointer, code: PostgresError.Code) -> PostgresError {
        let message = PostgresError.oneLine(String(cString: PQresultErrorMessage(result)))
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        return PostgresError(code, message, sqlState: state)
    }

    // MARK: COPY

    /// Runs `COPY ... TO STDOUT` and hands each row (text format, newline-terminated) to `row`.
    /// Returns the number of rows.
    @discardableResult
    public func copyOut(_ sql: String, row: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        guard let start = PQexec(handle, sql) else {
            throw PostgresError(.copyFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
        }
        guard PQresultStatus(start) == PGRES_COPY_OUT else {
            defer { PQclear(start) }
            throw Connection.error(from: start, code: .copyFailed)
        }
        PQclear(start)
        var rows: Int64 = 0
        var callbackError: Error?
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 0)
            if length > 0, let buffer {
                defer { PQfreemem(buffer) }
                if callbackError == nil {
                    do {
                        try row(UnsafeRawBufferPointer(start: buffer, count: Int(length)))
                        rows += 1
                    } catch {
                        // Keep draining so the connection stays usable, but stop processing.
                        callbackError = error
                        PQrequestCancel(handle)
                    }
                }
                continue
            }
            if length == -2 {
                throw PostgresError(.copyFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
            }
            break
        }
        try drainResults(code: .copyFailed, ignoreErrors: callbackError != nil)
        if let callbackError { throw callbackError }
        return rows
    }

    /// Starts `COPY ... FROM STDIN`; write the data to the returned sink, then `finish` or `abort` it.
    public func copyIn(_ sql: String) throws -> CopyInWriter {
        guard let start = PQexec(handle, sql) else {
            throw PostgresError(.copyFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
        }
        defer { PQclear(start) }
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            throw Connection.error(from: start, code: .copyFailed)
        }
        return CopyInWriter(connection: self)
    }

    func putCopyData(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let status = PQputCopyData(handle, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        guard status == 1 else {
            throw PostgresError(.copyFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
        }
    }

    func endCopy(failure: String?) throws {
        let status = PQputCopyEnd(handle, failure)
        guard status == 1 else {
            throw PostgresError(.copyFailed, PostgresError.oneLine(String(cString: PQerrorMessage(handle))))
        }
        try drainResults(code: .copyFailed, ignoreErrors: failure != nil)
    }

    private func drainResults(code: PostgresError.Code, ignoreErrors: Bool) throws {
        var firstError: PostgresError?
        while let result = PQgetResult(handle) {
            let status = PQresultStatus(result)
            if status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && firstError == nil {
                firstError = Connection.error(from: result, code: code)
            }
            PQclear(result)
        }
        if let firstError, !ignoreErrors { throw firstError }
    }

    /// Quotes an identifier the way PostgreSQL's quote_ident does for any name: always in double quotes.
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public static func quoteLiteral(_ value: String) -> String {
        // Most values have no quote: skip Foundation's search-and-replace for them (the replay quotes every value).
        guard value.utf8.contains(UInt8(ascii: "'")) else { return "'" + value + "'" }
        return "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }

    public static func qualified(_ schema: String, _ name: String) -> String {
        quoteIdentifier(schema) + "." + quoteIdentifier(name)
    }
}

/// The data side of `COPY ... FROM STDIN`; `finish()` commits the COPY, `abort` cancels it.
public final class CopyInWriter {
    private let connection: Connection
    private var done = false

    init(connection: Connection) { self.connection = connection }

    public func write(_ bytes: UnsafeRawBufferPointer) throws { try connection.putCopyData(bytes) }

    public func finish() throws {
        guard !done else { return }
        done = true
        try connection.endCopy(failure: nil)
    }

    public func abort(reason: String) {
        guard !done else { return }
        done = true
        try? connection.endCopy(failure: reason)
    }
}

/// Text-format rows of a query.
public struct QueryResult: Sendable {
    public let columns: [String]
    public let rows: [[String?]]

    init(columns: [String], rows: [[String?]]) {
        self.columns = columns
        self.rows = rows
    }

    init(_ result: OpaquePointer) {
        let fieldCount = PQnfields(result)
        columns = (0..<fieldCount).map { String(cString: PQfname(result, $0)) }
        rows = (0..<PQntuples(result)).map { row in
            (0..<fieldCount).map { col in
                PQgetisnull(result, row, col) == 1 ? nil : String(cString: PQgetvalue(result, row, col))
            }
        }
    }

    public var count: Int { rows.count }

    public subscript(row: Int, column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }

    /// The first column of the first row, for one-value queries.
    public var scalar: String? { rows.first?.first ?? nil }
}

/// Parsed connection options (`PQconninfoParse`), so a conninfo can be rewritten or shown without its password.
public struct ConnectionOptions: Sendable {
    public private(set) var options: [(key: String, value: String)]

    public init(_ conninfo: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let parsed = PQconninfoParse(conninfo, &errorMessage) else {
            let message = errorMessage.map { String(cString: $0) } ?? "invalid connection string"
            if let errorMessage { PQfreemem(errorMessage) }
            throw PostgresError(.connectionFailed, "invalid connection string: " + PostgresError.oneLine(message))
        }
        defer { PQconninfoFree(parsed) }
        var options: [(String, String)] = []
        var cursor = parsed
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val {
                options.append((String(cString: keyword), String(cString: value)))
            }
            cursor += 1
        }
        self.options = options
    }

    public subscript(key: String) -> String? {
        get { options.first { $0.key == key }?.value }
        set {
            options.removeAll { $0.key == key }
            if let newValue { options.append((key, newValue)) }
        }
    }

    /// keyword='value' form, as libpq accepts it.
    public var conninfo: String {
        options.map { "\($0.key)='\($0.value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'"))'" }
            .joined(separator: " ")
    }

    /// For messages and logs: never contains the password.
    public var redacted: String {
        let shown = ["host", "hostaddr", "port", "user", "dbname"]
        return options.filter { shown.contains($0.key) }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
