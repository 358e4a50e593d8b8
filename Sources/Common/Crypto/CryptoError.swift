/// A failure inside OpenSSL that is not about the data (allocation, a refused parameter).
/// Authentication failures are not errors here: `AESGCM.open` answers them with nil.
public struct CryptoError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
