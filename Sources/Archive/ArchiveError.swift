/// Errors raised while reading or writing archive data. `Kind` tells callers which of them mean
/// "the data is not what was written" (integrity) and which mean "the key is not the right one".
public struct ArchiveError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Equatable, Sendable {
        /// A segment failed authentication: a flipped bit, reordered segments or the wrong key.
        case authenticationFailed
        /// The stream ended early (segments or bytes missing).
        case truncated
        /// The bytes are not in the expected format.
        case malformed
        /// The key-encryption key does not match the backup.
        case wrongKey
        /// A failure inside OpenSSL or zlib that is not about the data.
        case library
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
