import ArgumentParser
import DRKit
import Foundation

struct Repo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Repository maintenance.",
        subcommands: [Clean.self, Copy.self])

    struct Clean: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove what interrupted backups left: folders without a manifest, incomplete multipart uploads, temporary files.",
            discussion: """
                A backup that holds a live lease (it is running) is never touched, whatever its age; a lease \
                whose last heartbeat is older than --stale-after (at least 5m) is reported, and broken with \
                --execute, and its backup is then cleaned like any interrupted one, whatever its age (if it was only \
                paused, it fails when it resumes instead of committing). A lease held by a live process of this host \
                is never broken. Otherwise only things older than --grace are touched. Dry run by default: shows \
                what would go; --execute removes it.
                """)

        @OptionGroup var repository: RepositoryOptions
        @Option(name: .long, help: ArgumentHelp("Leave anything younger than this (e.g. 90m, 24h, 7d).", valueName: "duration"))
        var grace = "24h"
        @Option(name: .long, help: ArgumentHelp("A lease with no heartbeat for this long is stale (at least 5m; a lease held by a live process of this host is never stale).", valueName: "duration"))
        var staleAfter = "15m"
        @Flag(name: .long, help: "Remove what the dry run lists.")
        var execute = false
        @OptionGroup var output: OutputFlags

        func validate() throws {
            guard Durations.parse(grace) != nil else { throw ValidationError("--grace takes a duration like 90m, 24h or 7d") }
            guard let stale = Durations.parse(staleAfter), stale > 0 else { throw ValidationError("--stale-after takes a duration like 15m or 1h") }
            do { try Lease.checkStaleAfter(stale) } catch let error as DRKitError { throw ValidationError(error.message) }
        }

        func run() throws {
            try runReportingErrors {
                let repo = try repository.open(create: false)
                var plan = try RepositoryCleaner.plan(repo, grace: Durations.parse(grace)!, staleAfter: Durations.parse(staleAfter)!)
                if execute { plan = try RepositoryCleaner.execute(plan, on: repo) }
                if output.json {
                    Console.shared.output(try JSONText.encode(plan))
                    return
                }
                let verb = execute ? "removed" : "would remove"
                var lines = plan.staleLeases.map {
                    "\(execute ? "broke" : "would break") stale lease: \($0.heldBy), last heartbeat \(Format.duration($0.heartbeatAgeSeconds)) ago"
                }
                lines += plan.inUse.map {
                    "left alone: backup \($0.backupId) is running (\($0.heldBy), heartbeat \(Format.duration($0.heartbeatAgeSeconds)) ago)"
                }
                lines += plan.incompleteBackups.map {
                    "\(verb) incomplete backup \($0.backupId): \($0.objects) objects, \(Format.bytes($0.bytes)), started \(Format.duration($0.ageSeconds)) ago"
                }
                lines += plan.incompleteWrites.map { "\(execute ? "aborted" : "would abort") incomplete upload \($0.key) (started \(Format.duration($0.ageSeconds)) ago)" }
                if plan.tooRecent > 0 { lines.append("left alone: \(plan.tooRecent) incomplete item(s) younger than \(grace) (possibly still running)") }
                if lines.isEmpty { lines.append("nothing to clean in \(repo.store.location)") }
                if !execute && !(plan.incompleteBackups.isEmpty && plan.incompleteWrites.isEmpty && plan.staleLeases.isEmpty) {
                    lines.append("dry run: pass --execute to remove these")
                }
                Console.shared.output(lines.joined(separator: "\n"))
            }
        }
    }

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy backups to a second repository (another region, provider or a local directory), unchanged.",
            discussion: """
                Objects are copied as stored: no key is needed and nothing is decrypted or recompressed. Each \
                object's size and SHA-256 are checked against the manifest as it streams, and only then committed at \
                the destination; the manifest is written last, so the destination never lists a half-copied backup. \
                A backup already at the destination is skipped; a copy interrupted (even by kill -9) is finished by the \
                next run, which hashes the objects the interrupted one committed (copying damaged ones again) and \
                removes what it left. An encrypted backup with no key envelope is refused; with a key given, so is \
                one that does not open with it. Leases on both sides keep `forget` at the \
                source and `repo clean` at the destination away while it runs. --all copies every backup the source \
                has, including any that `forget` removed at the destination (run forget there afterwards to apply its \
                own policy). Each repository's endpoint, region and profile go in its URL \
                (s3://bucket/prefix?endpoint=...&profile=...). --object-lock sets S3 Object Lock retention on what is \
                written at the destination (counted from the copy). Exit code: 0 when every backup was copied or already \
                there, else the code of the first failure (4 repository, 5 integrity, 6 refused by a lease).
                """)

        @Argument(help: ArgumentHelp("Backup id (or a unique prefix) or `latest`; omit with --all.", valueName: "backup"))
        var backup: String?
        @Flag(name: .long, help: "Copy every completed backup of the source.")
        var all = false
        @Option(name: .long, help: ArgumentHelp("Source repository (same forms as --repo).", valueName: "repo"))
        var from: String
        @Option(name: .long, help: ArgumentHelp("Destination repository (created if it is a directory that does not exist).", valueName: "repo"))
        var to: String
        @Option(name: .long, help: "Objects copied at once.")
        var jobs = 4
        @OptionGroup var s3: S3Flags
        @OptionGroup var rate: RateFlags
        @OptionGroup var keys: KeyFlags
        @OptionGroup var lock: ObjectLockFlags
        @OptionGroup var metrics: MetricsFlags
        @OptionGroup var output: OutputFlags

        func validate() throws {
            try validateJobs(jobs)
            if all == (backup != nil) { throw ValidationError("give a backup id (or `latest`) or --all") }
            if from == to { throw ValidationError("--from and --to name the same repository") }
        }

        func run() throws {
            try runReportingErrors {
                Console.shared.quiet = output.quiet
                try checkRepositoryLocation(from, flag: "--from")
                try checkRepositoryLocation(to, flag: "--to")
                let source = try Repository.open(from, create: false, s3: s3.options)
                let limiter = try rate.limiter()
                let destination = try Repository.open(to, create: true, s3: s3.options).locking(try lock.lock()).limited(to: limiter)
                var options = RepositoryCopy.Options()
                options.jobs = jobs
                options.keys = keys.keyOptions
                options.showProgress = !output.quiet && !output.json
                let report = try metrics.reporting({ (report: RepositoryCopy.Report?, started, finished) in
                    CommandMetrics.copy(from: source.store.location, to: destination.store.location, report: report, startedAt: started, finishedAt: finished)
                }) { try RepositoryCopy.run(from: source, to: destination, selection: all ? .all : .backup(backup!), options: options) }
                if output.json {
                    Console.shared.output(try JSONText.encode(report))
                } else {
                    Console.shared.output(CopyText.lines(report).joined(separator: "\n"))
                }
                if let failure = report.failures.first {
                    printError("\(report.failures.count) of \(report.backups.count) backup(s) not copied; \(failure.backupId): \(failure.error ?? "?")")
                    throw ExitCode(failure.exitCode ?? DRKitError.Code.repository.exitCode)
                }
            }
        }
    }
}

/// The human form of a copy report, shared by `repo copy` and `backup --copy-to`.
enum CopyText {
    static func lines(_ report: RepositoryCopy.Report) -> [String] {
        var lines = report.backups.map { b -> String in
            switch b.status {
            case .present: return "\(b.backupId) (\(b.database)): already at \(report.to)"
            case .removedAtSource: return "\(b.backupId) (\(b.database)): removed from \(report.from) by forget while copying; not copied"
            case .failed: return "\(b.backupId) (\(b.database)): FAILED: \(b.error ?? "?")"
            case .copied:
                var text = "\(b.backupId) (\(b.database)): copied \(b.objectsCopied) objects, \(Format.bytes(b.bytesCopied)) in \(Format.seconds(b.seconds)) s, every object's SHA-256 checked"
                if b.objectsAlreadyThere > 0 { text += "; \(b.objectsAlreadyThere) were already there (an interrupted copy finished)" }
                if b.leftoversRemoved > 0 { text += "; \(b.leftoversRemoved) leftover object(s) removed" }
                return text
            }
        }
        lines += report.changeArchive.map {
            "change archive of \($0.database), lineage \($0.lineage): \($0.segmentsCopied) segment(s) copied (\(Format.bytes($0.bytesCopied)), read back), \($0.segmentsAlreadyThere) already there"
        }
        let copied = report.backups.filter { $0.status == .copied }.count
        let present = report.backups.filter { $0.status == .present }.count
        lines.append("\(report.from) → \(report.to): \(copied) copied, \(present) already there, \(report.failures.count) failed; \(report.objectsCopied) objects, \(Format.bytes(report.bytesCopied)) in \(Format.seconds(report.seconds)) s")
        return lines
    }
}
