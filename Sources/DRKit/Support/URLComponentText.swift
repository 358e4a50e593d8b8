import Foundation

/// Percent-encoding for one URL component (user, password, database name): everything but the
/// RFC 3986 unreserved characters. DrillRunner builds DATABASE_URL with it, and SecretMask masks the
/// encoded form of secrets with it, so the two always agree.
enum URLComponentText {
    static let unreserved = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }
}
