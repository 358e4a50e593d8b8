import Foundation

/// Retention decisions computed independently of drkit (ISO calendar buckets over plain dates), for
/// the value tests and the 400-day simulation to compare drkit's decisions with.
public enum RetentionOracle {
    /// An independent oracle: the newest backup of each of the `count` most recent calendar units.
    public static func expectedKept(_ times: [Date], daily: Int, weekly: Int, monthly: Int, yearly: Int) -> Set<Date> {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        func newestPer(_ components: Set<Calendar.Component>, _ count: Int) -> [Date] {
            var seen: [DateComponents: Date] = [:]
            for time in times {
                let key = calendar.dateComponents(components, from: time)
                if let existing = seen[key], existing > time { continue }
                seen[key] = time
            }
            return Array(seen.values.sorted(by: >).prefix(count))
        }
        return Set(newestPer([.year, .month, .day], daily) + newestPer([.yearForWeekOfYear, .weekOfYear], weekly)
                   + newestPer([.year, .month], monthly) + newestPer([.year], yearly) + [times.max()!])
    }
}
