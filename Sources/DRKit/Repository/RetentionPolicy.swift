import Yams
import Foundation

/// Which backups to keep, with restic's semantics: a backup kept by any rule stays.
///
/// - `keepLast N`: the N newest.
/// - `keepHourly/Daily/Weekly/Monthly/Yearly N`: the newest backup of each of the N most recent hours
///   (days, ISO weeks, months, years) that have a backup, in `timeZone`.
/// - `keepWithin D`: every backup whose snapshot is within D of the newest one.
///
/// Rules apply per series: the whole-database backups of one database, the partial backups of one
/// database with one selection (`--table ...`), or the cluster's globals. A partial backup never counts
/// toward its database's whole series, so no rule it satisfies can remove a whole backup. The newest
/// backup of every series is always kept. Pure: the clock is the backups' own snapshot times, so the
/// same backups and policy always give the same decisions.
public struct RetentionPolicy: Codable, Sendable, Equatable {
    public var keepLast = 0
    public var keepHourly = 0
    public var keepDaily = 0
    public var keepWeekly = 0
    public var keepMonthly = 0
    public var keepYearly = 0
    public var keepWithin: TimeInterval?
    /// An IANA name; UTC when nil.
    public var timeZone: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case keepLast = "keep_last", keepHourly = "keep_hourly", keepDaily = "keep_daily", keepWeekly = "keep_weekly"
        case keepMonthly = "keep_monthly", keepYearly = "keep_yearly", keepWithin = "keep_within", timeZone = "timezone"
    }

    static let fileKeys = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within", "timezone"]

    public init(from decoder: Decoder) throws {
        // A misspelt rule (keep_daly) would silently keep less than the operator wrote: refuse it.
        try StrictKeys.check(decoder, known: Self.fileKeys, in: "retention policy")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        keepLast = try c.decodeIfPresent(Int.self, forKey: .keepLast) ?? 0
        keepHourly = try c.decodeIfPresent(Int.self, forKey: .keepHourly) ?? 0
        keepDaily = try c.decodeIfPresent(Int.self, forKey: .keepDaily) ?? 0
        keepWeekly = try c.decodeIfPresent(Int.self, forKey: .keepWeekly) ?? 0
        keepMonthly = try c.decodeIfPresent(Int.self, forKey: .keepMonthly) ?? 0
        keepYearly = try c.decodeIfPresent(Int.self, forKey: .keepYearly) ?? 0
        if let within = try c.decodeIfPresent(String.self, forKey: .keepWithin) {
            guard let seconds = Durations.parse(within) else {
                throw DecodingError.dataCorruptedError(forKey: .keepWithin, in: c, debugDescription: "keep_within takes a duration with a unit, like 30d or 36h (a bare number is refused)")
            }
            keepWithin = seconds
        }
        timeZone = try c.decodeIfPresent(String.self, forKey: .timeZone)
    }

    /// How long after its snapshot the policy may keep a backup at most, by its calendar rules
    /// (`keep_last` counts backups, not time, and adds nothing): the Object Lock a backup needs so that
    /// it cannot be deleted while the policy still wants it. nil when only `keep_last` is set.
    public var horizon: TimeInterval? {
        let hour = 3600.0, day = 86400.0
        let spans = [Double(keepHourly) * hour, Double(keepDaily) * day, Double(keepWeekly) * 7 * day,
                     Double(keepMonthly) * 31 * day, Double(keepYearly) * 366 * day, keepWithin ?? 0]
        let longest = spans.max() ?? 0
        return longest > 0 ? longest : nil
    }

    /// A policy file (e.g. manifests/retention.yaml) with the fields above; exit 2 when unreadable or
    /// when it holds a key that is not one of them.
    public static func load(path: String) throws -> RetentionPolicy {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DRKitError(.usage, "cannot read retention policy \(path)") }
        do { return try YAMLDecoder().decode(RetentionPolicy.self, from: text) } catch {
            throw DRKitError(.usage, "retention policy \(path): \(YAMLErrors.describe(error))")
        }
    }

    /// Refuses policies that would keep nothing, negative counts and unknown time zones (exit 2).
    public func validate() throws {
        let counts = [keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly]
        guard counts.allSatisfy({ $0 >= 0 }), (keepWithin ?? 0) >= 0 else { throw DRKitError(.usage, "retention counts and durations cannot be negative") }
        guard counts.contains(where: { $0 > 0 }) || (keepWithin ?? 0) > 0 else {
            throw DRKitError(.usage, "the retention policy keeps nothing: give at least one --keep-* rule")
        }
        if let timeZone, TimeZone(identifier: timeZone) == nil { throw DRKitError(.usage, "unknown time zone \(timeZone)") }
    }

    public struct Candidate: Sendable, Equatable {
        public var backupId: String
        public var database: String
        /// What the rules count this backup with: the database for a whole backup, the database and its
        /// selection for a partial one (see `series(database:selection:)`).
        public var series: String
        /// Authenticated snapshot time.
        public var time: Date
        public init(backupId: String, database: String, series: String? = nil, time: Date) {
            self.backupId = backupId
            self.database = database
            self.series = series ?? database
            self.time = time
        }
    }

    /// The series a backup belongs to: its database for a whole backup (globals-only backups are the
    /// database `(globals)`), or `database [--table=...]` for a partial one, so partial backups with the
    /// same selection form their own series.
    public static func series(database: String, selection: [String]?) -> String {
        guard let selection, !selection.isEmpty else { return database }
        return "\(database) [\(selection.joined(separator: " "))]"
    }

    public struct Decision: Codable, Sendable, Equatable {
        public var backupId: String
        public var database: String
        public var series: String
        public var time: Date
        public var keep: Bool
        /// Why it is kept (`last 1`, `daily 2026-11-20`, `within 30d`, `newest`), empty when removed.
        public var reasons: [String]
    }

    /// One decision per candidate, newest first within each series.
    public func decide(_ candidates: [Candidate]) -> [Decision] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
        calendar.firstWeekday = 2
        calendar.minimumDaysInFirstWeek = 4
        let bySeries = Dictionary(grouping: candidates, by: \.series)
        return bySeries.keys.sorted().flatMap { series -> [Decision] in
            let newestFirst = bySeries[series]!.sorted { ($0.time, $0.backupId) > ($1.time, $1.backupId) }
            var reasons = [[String]](repeating: [], count: newestFirst.count)
            reasons[0].append("newest")
            for index in newestFirst.indices.prefix(keepLast) { reasons[index].append("last \(index + 1)") }
            let buckets: [(String, Int, (Date) -> String)] = [
                ("hourly", keepHourly, { RetentionPolicy.format($0, "yyyy-MM-dd HH:00", calendar) }),
                ("daily", keepDaily, { RetentionPolicy.format($0, "yyyy-MM-dd", calendar) }),
                ("weekly", keepWeekly, { d in
                    let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: d)
                    return String(format: "%04d-W%02d", c.yearForWeekOfYear ?? 0, c.weekOfYear ?? 0)
                }),
                ("monthly", keepMonthly, { RetentionPolicy.format($0, "yyyy-MM", calendar) }),
                ("yearly", keepYearly, { RetentionPolicy.format($0, "yyyy", calendar) }),
            ]
            for (name, count, bucket) in buckets where count > 0 {
                var seen = Set<String>()
                for (index, candidate) in newestFirst.enumerated() {
                    let key = bucket(candidate.time)
                    guard !seen.contains(key) else { continue }
                    seen.insert(key)
                    reasons[index].append("\(name) \(key)")
                    if seen.count == count { break }
                }
            }
            if let keepWithin, let newest = newestFirst.first?.time {
                for (index, candidate) in newestFirst.enumerated() where newest.timeIntervalSince(candidate.time) <= keepWithin {
                    reasons[index].append("within \(RetentionPolicy.describe(keepWithin))")
                }
            }
            return newestFirst.enumerated().map { index, candidate in
                // "newest" alone is kept too: no policy removes a database's last backup.
                Decision(backupId: candidate.backupId, database: candidate.database, series: series, time: candidate.time,
                         keep: !reasons[index].isEmpty, reasons: reasons[index])
            }
        }
    }

    /// 30d, 12h, 90m or 45s: the largest whole unit.
    static func describe(_ seconds: TimeInterval) -> String {
        for (unit, size) in [("d", 86400.0), ("h", 3600.0), ("m", 60.0)] where seconds >= size && seconds.truncatingRemainder(dividingBy: size) == 0 {
            return "\(Int(seconds / size))\(unit)"
        }
        return "\(Int(seconds))s"
    }

    private static func format(_ date: Date, _ pattern: String, _ calendar: Calendar) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.calendar = calendar
        f.timeZone = calendar.timeZone
        f.dateFormat = pattern
        return f.string(from: date)
    }
}
