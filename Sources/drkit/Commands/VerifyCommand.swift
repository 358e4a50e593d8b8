import ArgumentParser
import Common
import Archive
import DRKit
import Foundation

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read back every object of a backup and check it, with no database.",
        discussion: "Each object is authenticated and decrypted, decompressed, and checked against the manifest: size, SHA-256 and COPY row count. Exit 0 only when every check passes; 1 when any object fails (each is named with the reason). --changes instead checks the change archive `drkit stream` writes (every lineage, or those of --database): each segment is read, authenticated, and must follow the one before it (number, position, hash); a removed, truncated, swapped or edited segment is exit 5, named.")

    @Argument(help: "Backup id (or unique prefix), or `latest`.")
    var backup: String?
    @Flag(name: .long, help: "Verify the change archive (point-in-time recovery) instead of a backup.")
    var changes = false
    @Option(name: .long, help: ArgumentHelp("With --changes: only this database's lineages.", valueName: "name"))
    var database: String?
    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var keys: KeyFlags
    @Option(name: .long, help: "Objects checked in parallel.")
    var jobs = 2
    @OptionGroup var metrics: MetricsFlags
    @OptionGroup var output: OutputFlags
    @Option(name: .long, help: ArgumentHelp("Also write the result as evidence here: evidence.json and verify-record.md (signed with --signing-key).", valueName: "dir"))
    var evidenceDir: String?
    @OptionGroup var signing: SigningFlags

    func validate() throws {
        try validateJobs(jobs)
        guard changes == (backup == nil) else { throw ValidationError(changes ? "--changes verifies the change archive: give no backup id" : "give a backup id (or latest), or --changes") }
        if database != nil && !changes { throw ValidationError("--database goes with --changes") }
        if evidenceDir != nil && changes { throw ValidationError("--evidence-dir records a backup's verification, not --changes") }
        if signing.signingKey != nil && evidenceDir == nil { throw ValidationError("--signing-key signs the evidence: give --evidence-dir too") }
    }

    func run() throws {
        try runReportingErrors {
            Console.shared.quiet = output.quiet
            let repo = try repository.open(create: false)
            guard let backup else { return try verifyChanges(repo) }
            let database = (try? repo.resolve(backup))?.summary.database ?? "unknown"
            let report = try metrics.reporting({ (report: VerifyReport?, started, finished) in
                CommandMetrics.verify(database: database, repository: repo.store.location, report: report, startedAt: started, finishedAt: finished)
            }) {
                try VerifyEngine(repository: repo, keys: keys.keyOptions, jobs: jobs,
                                 showProgress: !output.quiet && !output.json).run(reference: backup)
            }
            var lines = report.failures.map { "FAILED \($0.object) (\($0.content)): \($0.reason)" }
            lines += report.unlistedObjects.map { "note: \($0) is not named by the manifest (left over; not checked)" }
            lines.append(report.passed
                ? "verify \(report.backupId): OK, \(report.objectsChecked) objects, \(report.rowsChecked) rows, \(Format.bytes(report.storedBytes)) checked in \(Format.seconds(report.durationSeconds)) s"
                : "verify \(report.backupId): FAILED, \(report.failures.count) of \(report.objectsChecked) objects bad")
            if let evidenceDir { try writeEvidence(report, lines: lines, repository: repo, to: evidenceDir) }
            Console.shared.output(output.json ? try JSONText.encode(report) : lines.joined(separator: "\n"))
            if !report.passed {
                throw DRKitError(.checkFailed, "backup \(report.backupId) failed verification: " +
                                 report.failures.prefix(3).map { "\($0.object): \($0.reason)" }.joined(separator: "; "))
            }
        }
    }

    /// The result as evidence an auditor can keep: the report, a short record, and (with a signing
    /// key) signatures binding them to the backup's manifest.
    private func writeEvidence(_ report: VerifyReport, lines: [String], repository: Repository, to directory: String) throws {
        let record = "# Verification of backup \(report.backupId)\n\n- Result: **\(report.passed ? "PASSED" : "FAILED")**\n- Repository: \(repository.store.location)\n- Verified at: \(Timestamps.iso8601(Date()))\n\n```\n\(lines.joined(separator: "\n"))\n```\n"
        try EvidenceFiles.write(json: report, markdown: record, markdownName: "verify-record.md", to: directory)
        if let key = try signing.load() {
            let manifest = try? repository.store.get(key: "\(report.backupId)/\(ManifestFile.objectName)")
            try EvidenceSignature.sign(directory: directory, chain: .init(kind: "verify", runId: report.backupId, audit: nil, backupId: report.backupId, manifestBytes: manifest), key: key)
        }
    }

    private func verifyChanges(_ repo: Repository) throws {
        let showProgress = !output.quiet && !output.json
        let lineages = try ChangeArchiveInventory.verify(repo, keys: keys.keyOptions, database: database,
                                                         progress: showProgress ? { Console.shared.note($0) } : nil)
        if output.json { return Console.shared.output(try JSONText.encode(lineages)) }
        Console.shared.output(lineages.map {
            "verify changes \($0.database) lineage \($0.lineage): OK, \($0.segments) segments, \($0.transactionsChecked ?? 0) transactions, \($0.changesChecked ?? 0) row changes, \($0.firstCommit ?? "-") to \($0.lastCommit ?? "-")"
        }.joined(separator: "\n"))
    }
}
