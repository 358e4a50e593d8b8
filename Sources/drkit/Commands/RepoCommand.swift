import ArgumentParser
import DRKit
import Foundation

struct Repo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Repository maintenance.",
        subcommands: [Clean.self])

    struct Clean: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove what interrupted backups left: folders without a manifest, incomplete multipart uploads, temporary files.",
            discussion: """
                A backup that holds a live lease (it is running) is never touched, whatever its age; a lease \
                whose last heartbeat is older than --stale-after is reported, and broken with --execute, and its \
                backup is then cleaned like any interrupted one (if it was only paused, it fails when it resumes \
                instead of committing). Only things older than --grace are touched. Dry run by default: shows \
                what would go; --execute removes it.
                """)

        @OptionGroup var repository: RepositoryOptions
        @Option(name: .long, help: ArgumentHelp("Leave anything younger than this (e.g. 90m, 24h, 7d).", valueName: "duration"))
        var grace = "24h"
        @Option(name: .long, help: ArgumentHelp("A lease with no heartbeat for this long is stale (e.g. 15m).", valueName: "duration"))
        var staleAfter = "15m"
        @Flag(name: .long, help: "Remove what the dry run lists.")
        var execute = false
        @OptionGroup var output: OutputFlags

        func validate() throws {
            guard Durations.parse(grace) != nil else { throw ValidationError("--grace takes a duration like 90m, 24h or 7d") }
            guard let stale = Durations.parse(staleAfter), stale > 0 else { throw ValidationError("--stale-after takes a duration like 15m or 1h") }
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
}
