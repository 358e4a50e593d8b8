import Foundation
import Archive
import Common
import PostgresClient

enum CSV {
    static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Exact row counts (and optionally content checksums) per table on both sides, each side read in
/// one snapshot so the counts describe one instant.
