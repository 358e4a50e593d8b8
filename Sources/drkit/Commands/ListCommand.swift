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
            // Columns grow to fit; nothing is ever cut (ids and database names are what operators copy).
            let idWidth = max(9, summaries.map(\.backupId.count).max() ?? 0)
            let databaseWidth = max(8, summaries.map(\.database.count).max() ?? 0)
            var lines = [["BACKUP ID".rightPadded(idWidth), "SNAPSHOT (UTC)".rightPadded(24), "DATABASE".rightPadded(databaseWidth),
                          "TABLES", "     STORED", " ENCRYPTED"].joined(separator: " ")]
            for s in summaries {
                lines.append([
                    s.backupId.rightPadded(idWidth),
                    Timestamps.iso8601(s.snapshotTime).rightPadded(24),
                    s.database.rightPadded(databaseWidth),
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

    func rightPadded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
