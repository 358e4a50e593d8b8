import PostgresClient
import Foundation

/// The secrets a run knows (connection passwords, passphrases, keys, tokens), replaced by `********`
/// in any text drkit captured from elsewhere — a migration's output, a checklist command's output —
/// before it reaches the terminal, logs or evidence. Percent-encoded forms are masked too, because
/// that is how a password appears inside a DATABASE_URL.
public struct SecretMask: Sendable {
    public static let replacement = "********"
    /// Longest first, so a secret containing another is masked whole.
    private let secrets: [String]

    public init(_ values: [String?]) {
        var all = Set<String>()
        for case let value? in values where value.count >= 4 {
            all.insert(value)
            all.insert(URLComponentText.encode(value))
        }
        secrets = all.sorted { $0.count > $1.count }
    }

    /// Passwords in a conninfo or postgres:// URL.
    public static func secrets(ofConninfo conninfo: String?) -> [String?] {
        guard let conninfo, let options = try? ConnectionOptions(conninfo) else { return [] }
        return [options["password"], options["sslpassword"]]
    }

    /// Values of environment variables whose names say they are secret, and passwords in URL values.
    public static func secrets(ofEnvironment environment: [String: String]) -> [String?] {
        let secretName = try! NSRegularExpression(pattern: "PASSWORD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|(^|_)KEY$|^DRKIT_KEY$|^PGPASS", options: [.caseInsensitive])
        var found: [String?] = []
        for (name, value) in environment {
            if secretName.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil { found.append(value) }
            if value.contains("://"), let password = URLComponents(string: value)?.password { found.append(password.removingPercentEncoding ?? password) }
        }
        return found
    }

    public func apply(_ text: String) -> String {
        guard !secrets.isEmpty, !text.isEmpty else { return text }
        var masked = text
        for secret in secrets where masked.contains(secret) {
            masked = masked.replacingOccurrences(of: secret, with: SecretMask.replacement)
        }
        return masked
    }
}
