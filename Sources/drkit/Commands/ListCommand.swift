import Archive
import ArgumentParser
import Common
import DRKit
import Foundation

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the completed backups in a repository, newest first (no key needed).")

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputFlags

    func run() throws {
        try runReportingErrors {
            let repo = try repository.open(create: false)
            let summaries = try repo.backups().map(\.summary)
            if output.json {
                Console.shared.output(try JSONText.encode(summaries))
                return
            }
            if summaries.isEmpty {
                Console.shared.output("no completed backups in \(repo.store.location)")
                return
            }
            var lines = ["BACKUP ID                 SNAPSHOT (UTC)            DATABASE             TABLES      STORED  ENCRYPTED"]
            for s in summaries {
                lines.append([
                    s.backupId.padding(toLength: 25, withPad: " ", startingAt: 0),
                    Timestamps.iso8601(s.snapshotTime).padding(toLength: 25, withPad: " ", startingAt: 0),
                    s.database.padding(toLength: 20, withPad: " ", startingAt: 0),
                    String(s.tableCount).leftPadded(6),
                    Format.bytes(s.storedBytes).leftPadded(11),
                    s.encrypted ? " yes (\(s.keyFingerprint ?? "?"))" : " no",
                ].joined(separator: " "))
            }
            Console.shared.output(lines.joined(separator: "\n"))
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
