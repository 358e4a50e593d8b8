import Foundation

/// The timestamp formats drkit writes and reads, all UTC.
public enum Timestamps {
    /// ISO 8601 UTC with milliseconds, e.g. 2026-11-22T16:01:02.345Z
    public static func iso8601(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    /// yyyyMMddTHHmmssZ (UTC), as in backup ids and SigV4's x-amz-date.
    public static func compact(_ date: Date) -> String { compactFormatter.string(from: date) }
    public static func parseCompact(_ text: String) -> Date? { compactFormatter.date(from: text) }

    private static var compactFormatter: DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f
    }

    public static func parse(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }
}
