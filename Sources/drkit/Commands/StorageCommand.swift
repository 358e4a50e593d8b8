import ArgumentParser
import DRKit
import Foundation

struct Storage: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a storage backend.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a repository's storage the way a runbook would; exit 1 when any check fails.",
            discussion: """
                With probe objects under drkit-storage-check/ (removed again): list, put, get, a ranged read, \\
                a prefix listing and delete; on S3 also a multipart upload (completed) and one aborted, the \\
                clock skew against the server's Date, and the bucket's Object Lock setting; then the median \\
                latency. One line per check; a failure says what to fix.
                """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var output: OutputFlags

        func run() throws {
            try runReportingErrors {
                let report = StorageCheck.run(try repository.open(create: false))
                if output.json {
                    Console.shared.output(try JSONText.encode(report))
                } else {
                    Console.shared.output(report.checks.map { check in
                        check.passed ? "ok    \(check.name): \(check.figure)" : "FAIL  \(check.name): \(check.problem ?? "failed")"
                    }.joined(separator: "\n"))
                }
                if !report.passed { throw ExitCode(1) }
            }
        }
    }
}
