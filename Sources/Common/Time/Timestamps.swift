import Foundation

/// The timestamp formats drkit writes and reads, all UTC.
public enum Timestamps {
    /// ISO 8601 UTC with milliseconds, e.g. 2026-11-22T16:01:02.345Z
    public static func iso8601(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    /// yyyyMMddTHHmmssZ (UTC), as in SigV4's x-amz-date and backup ids before milliseconds.
    public static func compact(_ date: Date) -> String { utc("yyyyMMdd'T'HHmmss'Z'").string(from: date) }
    public static func parseCompact(_ text: String) -> Date? { utc("yyyyMMdd'T'HHmmss'Z'").date(from: text) }

    /// yyyyMMddTHHmmssSSSZ (UTC), as in backup ids.
    public static func compactMilliseconds(_ date: Date) -> String { utc("yyyyMMdd'T'HHmmssSSS'Z'").string(from: date) }
    public static func parseCompactMilliseconds(_ text: String) -> Date? { utc("yyyyMMdd'T'HHmmssSSS'Z'").date(from: text) }

    /// A new formatter each time: DateFormatter is not safe to share between threads.
    private static func utc(_ format: String) -> DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = format
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
