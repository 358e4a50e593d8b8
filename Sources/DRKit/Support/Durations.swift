import Foundation

public enum Durations {
    /// "90s", "30m", "2h", "7d". A bare number is refused: "30" could mean seconds or days, and a
    /// retention window read as 30 seconds removes backups the operator meant to keep.
    public static func parse(_ text: String) -> TimeInterval? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let last = text.last, let unit = units[last], let value = Double(text.dropLast()), value >= 0, value.isFinite else { return nil }
        return value * unit
    }
}
