import Archive
import PostgresClient
import ObjectStorage
import Common

/// An error meant for the operator: one line saying what failed and what to do, and the exit code
/// documented for its kind (README "Exit codes").
public struct DRKitError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable {
        public let exitCode: Int32
        public let name: String

        /// A check ran and did not pass (verify, parity, drift).
        public static let checkFailed = Code(exitCode: 1, name: "check failed")
        /// Bad flags, unreadable or malformed input files.
        public static let usage = Code(exitCode: 2, name: "usage")
        /// The database could not be reached or a statement failed.
        public static let database = Code(exitCode: 3, name: "database")
        /// The repository could not be reached, or the backup asked for does not exist.
        public static let repository = Code(exitCode: 4, name: "repository")
        /// Wrong key, or backup data that is corrupted, truncated or missing.
        public static let integrity = Code(exitCode: 5, name: "integrity")
        /// A safety rule refused the operation (target not empty, target is the source, data that cannot be carried).
        public static let refused = Code(exitCode: 6, name: "refused")
        /// An external tool (pg_dump) failed.
        public static let tool = Code(exitCode: 7, name: "tool")
        /// The backup is committed to its repository, but copying it to a second one (`--copy-to`) failed.
        public static let copyFailed = Code(exitCode: 8, name: "copy failed")
    }

    public let code: Code
    public let message: String
    /// The error this one reports (a PostgresError with its SQLSTATE, a StorageError with its kind),
    /// for callers that decide by it; the operator sees `message`.
    public let cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// The SQLSTATE of the database error underneath, if there is one.
    public var sqlState: String? {
        var current: (any Error)? = cause
        while let error = current {
            if let e = error as? PostgresError { return e.sqlState }
            current = (error as? DRKitError)?.cause
        }
        return nil
    }

    /// Gives any error its operator-facing form, adding `context` (what drkit was doing). The
    /// original error stays reachable as `cause`. A DRKitError is already operator-facing and is
    /// returned as it is.
    public static func wrap(_ error: Error, _ context: String? = nil) -> DRKitError {
        let prefix = context.map { "\($0): " } ?? ""
        switch error {
        case let e as DRKitError:
            return e
        case let e as PostgresError:
            return DRKitError(.database, prefix + e.message, cause: e)
        case let e as ArchiveError:
            return DRKitError(.integrity, prefix + e.message, cause: e)
        case let e as StorageError:
            switch e.kind {
            case .notFound: return DRKitError(.integrity, prefix + e.message, cause: e)
            case .invalidLocation: return DRKitError(.usage, prefix + e.message, cause: e)
            default: return DRKitError(.repository, prefix + e.message, cause: e)
            }
        case let e as TransportError:
            return DRKitError(.repository, prefix + e.message, cause: e)
        default:
            return DRKitError(.tool, prefix + String(describing: error), cause: error)
        }
    }
}
