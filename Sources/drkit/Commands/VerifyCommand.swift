import ArgumentParser
import Common
import DRKit
import Foundation

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read back every object of a backup and check it, with no database.",
        discussion: "Each object is authenticated and decrypted, decompressed, and checked against the manifest: size, SHA-256 and COPY row count. Exit 0 only when every check passes; 1 when any object fails (each is named with the reason).")

    @Argument(help: "Backup id (or unique prefix), or `latest`.")
    var backup: String
    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var keys: KeyFlags
    @Option(name: .long, help: "Objects checked in parallel.")
    var jobs = 2
    @OptionGroup var metrics: MetricsFlags
    @OptionGroup var output: OutputFlags

    func validate() throws {
        try validateJobs(jobs)
    }

    func run() throws {
        try runReportingErrors {
            Console.shared.quiet = output.quiet
            let repo = try repository.open(create: false)
            let database = (try? repo.resolve(backup))?.summary.database ?? "unknown"
            let report = try metrics.reporting({ (report: VerifyReport?, started, finished) in
                CommandMetrics.verify(database: database, repository: repo.store.location, report: report, startedAt: started, finishedAt: finished)
            }) {
                try VerifyEngine(repository: repo, keys: keys.keyOptions, jobs: jobs,
                                 showProgress: !output.quiet && !output.json).run(reference: backup)
            }
            if output.json {
                Console.shared.output(try JSONText.encode(report))
            } else {
                var lines = report.failures.map { "FAILED \($0.object) (\($0.content)): \($0.reason)" }
                lines += report.unlistedObjects.map { "note: \($0) is not named by the manifest (left over; not checked)" }
                lines.append(report.passed
                    ? "verify \(report.backupId): OK, \(report.objectsChecked) objects, \(report.rowsChecked) rows, \(Format.bytes(report.storedBytes)) checked in \(Format.seconds(report.durationSeconds)) s"
                    : "verify \(report.backupId): FAILED, \(report.failures.count) of \(report.objectsChecked) objects bad")
                Console.shared.output(lines.joined(separator: "\n"))
            }
            if !report.passed {
                throw DRKitError(.checkFailed, "backup \(report.backupId) failed verification: " +
                                 report.failures.prefix(3).map { "\($0.object): \($0.reason)" }.joined(separator: "; "))
            }
        }
    }
}
