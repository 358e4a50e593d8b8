import Archive
import Common
import ObjectStorage
import PostgresClient

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
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Gives any error its operator-facing form, adding `context` (what drkit was doing).
    public static func wrap(_ error: Error, _ context: String? = nil) -> DRKitError {
        let prefix = context.map { "\($0): " } ?? ""
        switch error {
        case let e as DRKitError:
            return e
        case let e as PostgresError:
            return DRKitError(.database, prefix + e.message)
        case let e as ArchiveError:
            return DRKitError(.integrity, prefix + e.message)
        case let e as StorageError:
            switch e.kind {
            case .notFound: return DRKitError(.integrity, prefix + e.message)
            case .invalidLocation: return DRKitError(.usage, prefix + e.message)
            default: return DRKitError(.repository, prefix + e.message)
            }
        case let e as TransportError:
            return DRKitError(.repository, prefix + e.message)
        default:
            return DRKitError(.tool, prefix + String(describing: error))
        }
    }
}
