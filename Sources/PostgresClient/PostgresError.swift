import Foundation

/// A failure talking to PostgreSQL. `sqlState` is set when the server reported one.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let raw: String
        public static let connectionFailed = Code(raw: "connection failed")
        public static let queryFailed = Code(raw: "query failed")
        public static let copyFailed = Code(raw: "COPY failed")
        public static let protocolViolation = Code(raw: "unexpected server response")
        public var description: String { raw }
    }

    public let code: Code
    public let message: String
    public let sqlState: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    public var description: String { message }

    /// libpq messages span several lines ("FATAL: ...\nDETAIL: ..."); operators get one line.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: "; ")
    }
}

extension PostgresError {
    public static let deadlockDetected = "40P01"
    public static let invalidCatalogName = "3D000"
}

