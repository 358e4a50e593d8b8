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
            discussion: "Only things older than --grace are touched, so a backup still running is left alone. Dry run by default: shows what would go; --execute removes it.")

        @OptionGroup var repository: RepositoryOptions
        @Option(name: .long, help: ArgumentHelp("Leave anything younger than this (e.g. 90m, 24h, 7d).", valueName: "duration"))
        var grace = "24h"
        @Flag(name: .long, help: "Remove what the dry run lists.")
        var execute = false
        @OptionGroup var output: OutputFlags

        func validate() throws {
            guard Durations.parse(grace) != nil else { throw ValidationError("--grace takes a duration like 90m, 24h or 7d") }
        }

        func run() throws {
            try runReportingErrors {
                let repo = try repository.open(create: false)
                var plan = try RepositoryCleaner.plan(repo, grace: Durations.parse(grace)!)
                if execute { plan = try RepositoryCleaner.execute(plan, on: repo) }
                if output.json {
                    Console.shared.output(try JSONText.encode(plan))
                    return
                }
                let verb = execute ? "removed" : "would remove"
                var lines = plan.incompleteBackups.map {
                    "\(verb) incomplete backup \($0.backupId): \($0.objects) objects, \(Format.bytes($0.bytes)), started \(Format.duration($0.ageSeconds)) ago"
                }
                lines += plan.incompleteWrites.map { "\(execute ? "aborted" : "would abort") incomplete upload \($0.key) (started \(Format.duration($0.ageSeconds)) ago)" }
                if plan.tooRecent > 0 { lines.append("left alone: \(plan.tooRecent) incomplete item(s) younger than \(grace) (possibly still running)") }
                if lines.isEmpty { lines.append("nothing to clean in \(repo.store.location)") }
                if !execute && !(plan.incompleteBackups.isEmpty && plan.incompleteWrites.isEmpty) {
                    lines.append("dry run: pass --execute to remove these")
                }
                Console.shared.output(lines.joined(separator: "\n"))
            }
        }
    }
}
