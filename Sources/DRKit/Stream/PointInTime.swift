import PostgresClient
import Foundation

/// Commit times as PostgreSQL keeps them: microseconds since 2000-01-01 UTC, exact (a Double date
/// would round the microseconds that tell two commits apart).
public enum CommitTime {
    /// ISO 8601 with `Z` or an offset (`2026-12-04T20:06:58.704019Z`, `...+01:00`), or PostgreSQL's
    /// timestamptz text (`2026-12-04 20:06:58.704019+00`). A time without a zone is refused: it would
    /// mean a different instant on every host.
    public static func parse(_ text: String) -> Int64? {
        let scalars = Array(text.trimmingCharacters(in: .whitespaces).utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= scalars.count else { return nil }
            var value = 0
            for byte in scalars[index..<index + digits] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += digits
            return value
        }
        func skip(_ byte: UInt8) -> Bool {
            guard index < scalars.count, scalars[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = number(4), skip(UInt8(ascii: "-")), let month = number(2), skip(UInt8(ascii: "-")), let day = number(2),
              skip(UInt8(ascii: "T")) || skip(UInt8(ascii: " ")), let hour = number(2), skip(UInt8(ascii: ":")), let minute = number(2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60 else { return nil }
        var second = 0
        var micros = 0
        if skip(UInt8(ascii: ":")) {
            guard let s = number(2), s < 61 else { return nil }
            second = s
            if skip(UInt8(ascii: ".")) || skip(UInt8(ascii: ",")) {
                var digits = 0
                while index < scalars.count, (48...57).contains(scalars[index]) {
                    if digits < 6 { micros = micros * 10 + Int(scalars[index] - 48) }
                    digits += 1
                    index += 1
                }
                guard digits > 0 else { return nil }
                for _ in digits..<max(digits, 6) { micros *= 10 }
            }
        }
        var offsetSeconds = 0
        if skip(UInt8(ascii: "Z")) || skip(UInt8(ascii: "z")) {
        } else if index < scalars.count, scalars[index] == UInt8(ascii: "+") || scalars[index] == UInt8(ascii: "-") {
            let sign = scalars[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(2), hours <= 15 else { return nil }
            var minutes = 0
            if skip(UInt8(ascii: ":")) {
                guard let m = number(2) else { return nil }
                minutes = m
            } else if index < scalars.count, let m = number(2) {
                minutes = m
            }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard index == scalars.count else { return nil }
        let days = daysSince2000(year: year, month: month, day: day)
        let seconds = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return seconds * 1_000_000 + Int64(micros)
    }

    /// `2026-12-04T20:06:58.704019Z`.
    public static func iso8601(_ micros: Int64) -> String {
        let (date, fraction) = civil(micros)
        return "\(date.0)-\(two(date.1))-\(two(date.2))T\(two(date.3)):\(two(date.4)):\(two(date.5)).\(six(fraction))Z"
    }

    /// `20261204T200658704019Z`: sorts as the time does (object names).
    public static func compact(_ micros: Int64) -> String {
        let (date, fraction) = civil(micros)
        return "\(date.0)\(two(date.1))\(two(date.2))T\(two(date.3))\(two(date.4))\(two(date.5))\(six(fraction))Z"
    }

    public static func parseCompact(_ text: String) -> Int64? {
        guard text.count == 22, text.hasSuffix("Z") else { return nil }
        let t = Array(text)
        let iso = "\(String(t[0..<4]))-\(String(t[4..<6]))-\(String(t[6..<8]))T\(String(t[9..<11])):\(String(t[11..<13])):\(String(t[13..<15])).\(String(t[15..<21]))Z"
        return parse(iso)
    }

    public static func date(_ micros: Int64) -> Date { PostgresTime.date(micros) }
    public static func micros(_ date: Date) -> Int64 { PostgresTime.microseconds(date) }

    private static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
    private static func six(_ value: Int) -> String { String(String(value + 1_000_000).dropFirst()) }

    /// Days from 2000-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil, shifted).
    static func daysSince2000(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468 - 10957
    }

    private static func civil(_ micros: Int64) -> ((Int, Int, Int, Int, Int, Int), Int) {
        var seconds = micros / 1_000_000
        var fraction = Int(micros % 1_000_000)
        if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
        var days = Int(seconds / 86400)
        var rest = Int(seconds % 86400)
        if rest < 0 { rest += 86400; days -= 1 }
        let z = days + 10957 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let dayOfEra = z - era * 146097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return ((year, month, day, rest / 3600, rest % 3600 / 60, rest % 60), fraction)
    }
}

/// Where `restore --to-time / --to-lsn / --to-latest` stops replaying the change archive.
public enum RecoveryTarget: Sendable, Equatable, CustomStringConvertible {
    /// The last transaction committed at or before this time (microseconds since 2000-01-01 UTC).
    case time(Int64)
    /// The last transaction whose commit record starts at or before this position.
    case lsn(LSN)
    /// Everything archived.
    case latest

    public var description: String {
        switch self {
        case .time(let micros): return CommitTime.iso8601(micros)
        case .lsn(let lsn): return "LSN \(lsn)"
        case .latest: return "the end of the archive"
        }
    }
}
