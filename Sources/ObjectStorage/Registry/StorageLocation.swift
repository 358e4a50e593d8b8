import Foundation

/// Where a repository is, parsed from what the operator typed: `s3://bucket/prefix?region=eu-west-1`,
/// `file:///srv/backups`, or a bare directory path. The scheme picks the store (`StorageRegistry`);
/// the query carries that store's options, so two repositories in one command can differ.
/// Secrets never ride on a location: credential-like parameter names are refused.
public struct StorageLocation: Sendable, Equatable, CustomStringConvertible {
    /// Lower-cased: `file`, `s3`.
    public var scheme: String
    /// `file`: an absolute directory path. `s3`: `bucket` or `bucket/prefix`.
    public var path: String
    public var parameters: [String: String]

    public init(scheme: String, path: String, parameters: [String: String] = [:]) {
        self.scheme = scheme
        self.path = path
        self.parameters = parameters
    }

    static let secretLike = ["secret", "password", "passwd", "token", "credential", "signature", "access_key", "accesskey", "key_id", "session"]

    /// Parses a location; relative bare paths resolve against `currentDirectory`.
    public static func parse(_ text: String, currentDirectory: String = FileManager.default.currentDirectoryPath) throws -> StorageLocation {
        guard !text.isEmpty else { throw StorageError(.invalidLocation, "empty repository location") }
        guard let separator = text.range(of: "://"), !text.hasPrefix("/") else {
            // A relative path may start from the parent folders of the current one ("../backups"); once
            // named, a path never climbs back out of itself ("/srv/x/../.." is refused).
            let leadingUps = text.hasPrefix("/") ? 0 : text.split(separator: "/").prefix { $0 == ".." || $0 == "." }.count
            try refuseClimbing(text.split(separator: "/").dropFirst(leadingUps).joined(separator: "/"), as: text)
            let absolute = text.hasPrefix("/") ? text : URL(fileURLWithPath: text, relativeTo: URL(fileURLWithPath: currentDirectory)).path
            return StorageLocation(scheme: "file", path: URL(fileURLWithPath: absolute).standardizedFileURL.path)
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        let rest = text[separator.upperBound...]
        let (path, query) = rest.firstIndex(of: "?").map { (String(rest[..<$0]), String(rest[rest.index(after: $0)...])) } ?? (String(rest), "")
        if scheme != "file", path.prefix(while: { $0 != "/" }).contains("@") {
            // Never echoed: what stands before "@" is an access key and a secret.
            throw StorageError(.invalidLocation, "a \(scheme):// repository URL cannot carry credentials before \"@\"; secrets never go on a URL (use the environment or a named profile: ?profile=NAME)")
        }
        if scheme == "file" { try refuseClimbing(path, as: "file://\(path)") }
        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = (parts[0].removingPercentEncoding ?? String(parts[0])).lowercased()
            let value = parts.count > 1 ? (parts[1].removingPercentEncoding ?? String(parts[1])) : ""
            if secretLike.contains(where: { name.contains($0) }) {
                throw StorageError(.invalidLocation, "repository URL parameter \"\(name)\" looks like a credential; secrets never go on a URL (use the environment or a named profile: ?profile=NAME)")
            }
            if name == "endpoint", Self.hasUserInfo(value) {
                throw StorageError(.invalidLocation, "the endpoint parameter of a repository URL cannot carry credentials before \"@\"; secrets never go on a URL (use the environment or a named profile: ?profile=NAME)")
            }
            guard parameters[name] == nil else { throw StorageError(.invalidLocation, "repository URL parameter \"\(name)\" is given twice") }
            parameters[name] = value
        }
        return StorageLocation(scheme: scheme, path: path, parameters: parameters)
    }

    /// Whether an http(s) URL names a user (and perhaps a password) before its host.
    public static func hasUserInfo(_ url: String) -> Bool {
        guard let separator = url.range(of: "://") else { return url.prefix { $0 != "/" }.contains("@") }
        return url[separator.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }.contains("@")
    }

    /// Refuses a ".." that climbs above where the path starts: a repository named `/nonexistent/../..`
    /// would be the whole filesystem. (`/srv/../srv/b` stays inside and means `/srv/b`.)
    static func refuseClimbing(_ path: String, as written: String) throws {
        var depth = 0
        for component in path.split(separator: "/") where component != "." {
            depth += component == ".." ? -1 : 1
            guard depth >= 0 else {
                throw StorageError(.invalidLocation, "repository path \(written) climbs out of itself with \"..\": name the folder itself (such a path can reach the whole filesystem)")
            }
        }
    }

    /// The location as typed, normalised; holds no secrets by construction.
    public var description: String {
        let query = parameters.keys.sorted().map { "\($0)=\(parameters[$0]!)" }.joined(separator: "&")
        return "\(scheme)://\(path)" + (query.isEmpty ? "" : "?\(query)")
    }
}
