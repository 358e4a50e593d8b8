import Foundation

/// HTTP dates (RFC 7231 IMF-fixdate), as in Date, Last-Modified and Retry-After.
enum HTTPDate {
    static func parse(_ text: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: text)
    }
}
