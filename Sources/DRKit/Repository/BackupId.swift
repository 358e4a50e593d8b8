import Archive
import Foundation
import Common

/// Backup ids name a backup's folder: the UTC start time to the millisecond, then six random hex
/// digits, e.g. `20261130T193512345Z-a1b2c3`. Ids written before milliseconds were added have whole
/// seconds (`20261130T193512Z-a1b2c3`) and stay valid.
public enum BackupId {
    public static func make(startedAt: Date = Date()) -> String {
        Timestamps.compactMilliseconds(startedAt) + "-" + SecureRandom.hex(3)
    }

    public static func isValid(_ text: String) -> Bool {
        text.range(of: #"^\d{8}T\d{6}(\d{3})?Z-[0-9a-f]{6}$"#, options: .regularExpression) != nil
    }

    /// The start time an id carries (for the age of a backup that never finished).
    public static func startTime(of id: String) -> Date? {
        guard isValid(id), let z = id.firstIndex(of: "Z") else { return nil }
        let stamp = String(id[...z])
        return stamp.count == 16 ? Timestamps.parseCompact(stamp) : Timestamps.parseCompactMilliseconds(stamp)
    }

    /// Newest first: by snapshot time, then by start time, then by id. The id alone is not an order:
    /// two backups started in the same second (older ids) differ only in their random suffix.
    public static func newestFirst(_ a: BackupSummary, _ b: BackupSummary) -> Bool {
        if a.snapshotTime != b.snapshotTime { return a.snapshotTime > b.snapshotTime }
        if a.startedAt != b.startedAt { return a.startedAt > b.startedAt }
        return a.backupId > b.backupId
    }
}
