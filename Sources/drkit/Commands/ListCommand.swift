import Archive
import ObjectStorage
import ArgumentParser
import Common
import DRKit
import Foundation

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the completed backups in a repository, newest first (no key needed).",
        discussion: """
            Without a key the listing shows each backup's plaintext summary, which anyone who can write to \
            the repository could edit: it is marked unverified. With the key (--key-file, --passphrase-env, --identity or \
            DRKIT_KEY) every summary is checked against its authenticated manifest, and a mismatch is exit 5.
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var keys: KeyFlags
    @Flag(name: .long, help: "List the change archive (`drkit stream`) instead: each lineage's covered range, lag and last segment.")
    var changes = false
    @OptionGroup var output: OutputFlags

    func run() throws {
        try runReportingErrors {
            let repo = try repository.open(create: false)
            if changes { return try listChanges(repo) }
            let files = try repo.backups()
            let verified = try keys.keyOptions.canOpenBackups()
            if verified {
                for file in files { _ = try repo.openBackup(file, keys: keys.keyOptions) }
            }
            let summaries = List.groupedByRun(files.map(\.summary))
            // Object Lock retention, read only where the bucket has Object Lock (one HEAD per backup there).
            let locks: [String: ObjectLock] = try repo.objectLockEnabled()
                ? Dictionary(uniqueKeysWithValues: try summaries.compactMap { s in try repo.lock(of: s.backupId).map { (s.backupId, $0) } })
                : [:]
            if output.json {
                Console.shared.output(try JSONText.encode(summaries.map {
                    ListedBackup(summary: $0, verified: verified && $0.encrypted, objectLock: locks[$0.backupId])
                }))
                return
            }
            if summaries.isEmpty {
                Console.shared.output("no completed backups in \(repo.store.location)")
                return
            }
            // Columns grow to fit; nothing is ever cut (ids and database names are what operators copy).
            let idWidth = max(9, summaries.map(\.backupId.count).max() ?? 0)
            let databaseWidth = max(8, summaries.map { List.databaseColumn($0).count }.max() ?? 0)
            let showRuns = summaries.contains { $0.run != nil || $0.globals == true }
            let runWidth = max(3, summaries.map { List.runColumn($0).count }.max() ?? 0)
            var lines = [["BACKUP ID".rightPadded(idWidth), "SNAPSHOT (UTC)".rightPadded(24), "DATABASE".rightPadded(databaseWidth)]
                         .joined(separator: " ") + (showRuns ? " " + "RUN".rightPadded(runWidth) : "")
                         + " " + ["TABLES", "     STORED", " ENCRYPTED"].joined(separator: " ") + (locks.isEmpty ? "" : "  LOCKED UNTIL")]
            for s in summaries {
                lines.append([
                    s.backupId.rightPadded(idWidth),
                    Timestamps.iso8601(s.snapshotTime).rightPadded(24),
                    List.databaseColumn(s).rightPadded(databaseWidth) + (showRuns ? " " + List.runColumn(s).rightPadded(runWidth) : ""),
                    String(s.tableCount).leftPadded(6),
                    Format.bytes(s.storedBytes).leftPadded(11),
                    s.encrypted ? " yes (\(s.keyFingerprint ?? "?"))" : " no",
                ].joined(separator: " ") + (locks.isEmpty ? "" : "  " + (locks[s.backupId].map { "\(Timestamps.iso8601($0.retainUntil)) (\($0.mode.rawValue))" } ?? "-")))
            }
            let archive = try ChangeArchiveInventory.list(repo)
            if !archive.isEmpty { lines += [""] + List.changeLines(archive) }
            if !verified { lines.append("(summaries unverified: give the key to check them against the authenticated manifests)") }
            if summaries.contains(where: { !$0.encrypted }) { lines.append("(unencrypted backups are not authenticated: anyone who can write to the repository can alter them unnoticed)") }
            Console.shared.output(lines.joined(separator: "\n"))
        }
    }
}

extension List {
    private func listChanges(_ repo: Repository) throws {
        let lineages = try ChangeArchiveInventory.list(repo)
        if output.json { return Console.shared.output(try JSONText.encode(lineages)) }
        Console.shared.output(lineages.isEmpty ? "no change archive in \(repo.store.location)" : List.changeLines(lineages).joined(separator: "\n"))
    }

    /// The change archive, one line per lineage: what a point-in-time restore can reach.
    static func changeLines(_ lineages: [ChangeArchiveLineage]) -> [String] {
        ["CHANGE ARCHIVE (restore --to-time)"] + lineages.map { l in
            "\(l.database): lineage \(l.lineage), \(l.segments) segments (\(Format.bytes(l.storedBytes))), \(l.startPosition) to \(l.endPosition), last commit \(l.lastCommit ?? "none yet")\(l.lagSeconds.map { " (\(Format.seconds($0)) s ago)" } ?? "")"
                + (l.gapAfter.map { "\n  GAP before this lineage: the slot was lost; nothing between \($0) and this lineage's first base is archived" } ?? "")
        }
    }

    /// Newest first, except that the backups of one `--all-databases` run stay together, where the
    /// run's newest backup would be.
    static func groupedByRun(_ summaries: [BackupSummary]) -> [BackupSummary] {
        var order: [String] = []
        var groups: [String: [BackupSummary]] = [:]
        for summary in summaries {
            let key = summary.run ?? summary.backupId
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(summary)
        }
        return order.flatMap { groups[$0]! }
    }

    /// The database, marked when the backup holds only part of it.
    static func databaseColumn(_ summary: BackupSummary) -> String {
        summary.database + (summary.partial == true ? " (partial)" : "")
    }

    /// The run id, or `-`; a single backup carrying globals says so.
    static func runColumn(_ summary: BackupSummary) -> String {
        summary.run ?? (summary.globals == true ? "- (+globals)" : "-")
    }
}

/// A `list --json` entry: the summary's fields, and whether they were checked with the key.
struct ListedBackup: Encodable {
    var summary: BackupSummary
    var verified: Bool
    /// S3 Object Lock retention of the backup's objects, when the bucket has Object Lock.
    var objectLock: ObjectLock?

    enum Keys: String, CodingKey { case verified, objectLock }

    func encode(to encoder: Encoder) throws {
        try summary.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(verified, forKey: .verified)
        try container.encodeIfPresent(objectLock, forKey: .objectLock)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }

    func rightPadded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
