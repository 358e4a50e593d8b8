import Foundation

/// How values are shown: never in full.
public enum Mask {
    /// `sk_live_…(32 chars)` when the value starts with a prefix the rules name, else `…(32 chars)`.
    public static func hint(_ value: String, knownPrefixes: [String]) -> String {
        let prefix = knownPrefixes.filter { value.hasPrefix($0) && value.count >= $0.count + 8 }.max { $0.count < $1.count }
        return "\(prefix ?? "")…(\(value.count) chars)"
    }

    /// The host of a URL, without user, password, path or query.
    public static func host(of value: String) -> String? {
        guard let url = URL(string: value), let host = url.host, !host.isEmpty else { return nil }
        return host.lowercased()
    }
}
