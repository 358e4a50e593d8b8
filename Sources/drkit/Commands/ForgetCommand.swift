import ArgumentParser
import Common
import DRKit
import Foundation

struct Forget: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a retention policy: keep what the rules name, remove the rest (dry run unless --execute).",
        discussion: """
            Rules (restic's semantics, per series; a backup kept by any rule stays): --keep-last N; \
            --keep-hourly/daily/weekly/monthly/yearly N keep the newest backup of each of the N most recent \
            hours (days, ISO weeks, months, years) that have one, in --timezone (default UTC); --keep-within D \
            keeps everything within D of the newest backup (a duration needs a unit: s, m, h or d). A series is \
            the whole backups of one database; partial backups (--table, --schema, ...) form a series per \
            database and selection, and globals-only backups their own, so a partial backup never stands in \
            for a whole one. The newest backup of every series is always kept, and a policy that keeps nothing \
            is refused; a policy file with an unknown key is refused. Decisions use the authenticated snapshot time and \
            database, so the key is needed for encrypted backups. --policy reads the rules from a YAML file \
            (keep_last, keep_daily, ..., keep_within: 30d, timezone: Europe/Berlin). With --execute every \
            decision is written to the audit trail; the manifest goes first, so a half-removed backup is never \
            listed, and an interrupted run is finished by the next.
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var keys: KeyFlags
    @Option(name: .long, help: ArgumentHelp("On a host holding only age recipients: decide on each backup's retention facts signed by the backup's --signing-key, checked with this public key (file or RW... line). --signing-key gives it too.", valueName: "key"))
    var publicKey: String?
    @OptionGroup var signing: SigningFlags
    @Option(name: .long, help: ArgumentHelp("Retention policy file (YAML); instead of the --keep-* flags.", valueName: "path"))
    var policy: String?
    @Option(name: .long, help: "Keep the N newest backups.") var keepLast: Int?
    @Option(name: .long, help: "Keep one backup for each of the N most recent hours.") var keepHourly: Int?
    @Option(name: .long, help: "Keep one backup for each of the N most recent days.") var keepDaily: Int?
    @Option(name: .long, help: "Keep one backup for each of the N most recent ISO weeks.") var keepWeekly: Int?
    @Option(name: .long, help: "Keep one backup for each of the N most recent months.") var keepMonthly: Int?
    @Option(name: .long, help: "Keep one backup for each of the N most recent years.") var keepYearly: Int?
    @Option(name: .long, help: ArgumentHelp("Keep every backup within this of the newest (e.g. 30d).", valueName: "duration")) var keepWithin: String?
    @Option(name: .long, help: ArgumentHelp("Time zone for the hour/day/week/month/year buckets (IANA name).", valueName: "zone")) var timezone: String?
    @Flag(name: .long, help: "Remove what the dry run lists.") var execute = false
    @OptionGroup var audit: AuditFlags
    @OptionGroup var metrics: MetricsFlags
    @OptionGroup var output: OutputFlags

    var flagsGiven: Bool {
        [keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly].contains { $0 != nil } || keepWithin != nil
    }

    func validate() throws {
        if policy != nil && flagsGiven { throw ValidationError("give --policy or --keep-* flags, not both") }
        if let keepWithin, Durations.parse(keepWithin) == nil { throw ValidationError("--keep-within takes a duration with a unit, like 30d or 12h (s, m, h, d)") }
    }

    func retentionPolicy() throws -> RetentionPolicy {
        var rules = try policy.map(RetentionPolicy.load) ?? RetentionPolicy()
        if flagsGiven {
            rules.keepLast = keepLast ?? 0
            rules.keepHourly = keepHourly ?? 0
            rules.keepDaily = keepDaily ?? 0
            rules.keepWeekly = keepWeekly ?? 0
            rules.keepMonthly = keepMonthly ?? 0
            rules.keepYearly = keepYearly ?? 0
            rules.keepWithin = keepWithin.flatMap(Durations.parse)
        }
        if let timezone { rules.timeZone = timezone }
        return rules
    }

    func run() throws {
        try runReportingErrors {
            let policy = try retentionPolicy()
            try policy.validate()
            let repo = try repository.open(create: false)
            let report = try metrics.reporting({ (report: DRKit.Forget.Report?, started, finished) in
                CommandMetrics.forget(repository: repo.store.location, report: report, startedAt: started, finishedAt: finished)
            }) {
                try DRKit.Forget.run(repository: repo, policy: policy, keys: keys.keyOptions, execute: execute,
                                     audit: execute ? try audit.open() : nil,
                                     publicKey: try publicKey.map(readPublicKey) ?? signing.load()?.publicKey)
            }
            if output.json {
                Console.shared.output(try JSONText.encode(report))
                return
            }
            var lines = report.finishedInterrupted.map { "finished removing \($0) (an earlier forget was interrupted)" }
            for d in report.decisions {
                let verdict = d.keep ? "keep   " : (execute ? "removed" : "remove ")
                lines.append("\(verdict) \(d.backupId)  \(d.series)  \(Timestamps.iso8601(d.time))\(d.keep ? "  " + d.reasons.joined(separator: ", ") : "")")
            }
            lines += report.changeArchive.map { c in
                "\(execute ? "removed" : "remove ") change archive of \(c.database), lineage \(c.lineage): \(c.wholeLineage ? "the whole lineage (no kept base backup is linked to it), " : "")\(c.segments) segment(s), \(Format.bytes(c.storedBytes)) no kept base backup needs" + (c.locked > 0 ? " (\(c.locked) still under Object Lock, left for a later run)" : "")
            }
            lines += report.warnings.map { "warning: \($0)" }
            lines.append("\(report.kept.count) kept, \(report.removed.count) \(execute ? "removed" : "to remove")" +
                         (execute || report.removed.isEmpty ? "" : " (dry run: pass --execute to remove them)"))
            Console.shared.output(lines.joined(separator: "\n"))
        }
    }
}
