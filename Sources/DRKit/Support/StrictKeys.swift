import Foundation

/// Refuses keys a configuration file does not define. Codable ignores unknown keys, which turns a
/// misspelt rule into a rule that is silently absent.
enum StrictKeys {
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Throws a usage error naming the first unknown key of the object being decoded (with the known
    /// key it most resembles), before any field is read.
    static func check(_ decoder: Decoder, known: [String], in what: String) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
        guard let first = unknown.first else { return }
        let hint = suggestion(for: first, among: known).map { " (did you mean \($0)?)" } ?? ""
        throw DRKitError(.usage, "unknown key \(first)\(hint) in the \(what); known keys: \(known.joined(separator: ", "))")
    }

    /// The known key within two edits of `key`, the closest first; nil when none is that close.
    static func suggestion(for key: String, among known: [String]) -> String? {
        let scored = known.map { ($0, editDistance(key, $0)) }.filter { $0.1 <= 2 }
        return scored.min { ($0.1, $0.0) < ($1.1, $1.0) }?.0
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
