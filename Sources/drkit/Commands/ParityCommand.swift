import ArgumentParser
import Common
import DRKit
import Foundation

struct Parity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare exact per-table row counts (and content checksums) of two databases, or a database and a backup manifest.",
        discussion: "Each side is counted in one snapshot. Writes rowcount.csv (schema,table,source_rows,target_rows,match). Exit codes: 0 parity, 1 mismatch, 2 error.")

    @Option(name: .long, help: ArgumentHelp("Source database (conninfo or URL).", valueName: "conninfo"))
    var source: String?
    @Option(name: .long, help: ArgumentHelp("Use a backup's manifest as the source (id or `latest`; needs --repo).", valueName: "backup"))
    var sourceBackup: String?
    @Option(name: .long, help: ArgumentHelp("Repository of --source-backup.", valueName: "repo"))
    var repo: String?
    @OptionGroup var s3: S3Flags
    @OptionGroup var keys: KeyFlags
    @Option(name: .long, help: ArgumentHelp("Target database (conninfo or URL).", valueName: "conninfo"))
    var target: String
    @Flag(name: .long, help: "Also compare an order-independent content checksum per table, computed in the database.")
    var checksum = false
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Only tables matching this glob over schema.table (repeatable, or comma-separated).", valueName: "glob"))
    var tables: [String] = []
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Skip tables matching this glob over schema.table (repeatable, or comma-separated).", valueName: "glob"))
    var exclude: [String] = []
    @Option(name: .long, help: ArgumentHelp("Where to write the CSV.", valueName: "path"))
    var csv = "rowcount.csv"
    @Option(name: .long, help: "Tables counted in parallel on each side.")
    var jobs = 2
    @OptionGroup var output: OutputFlags

    func validate() throws {
        guard (source == nil) != (sourceBackup == nil) else { throw ValidationError("give exactly one of --source and --source-backup") }
        if sourceBackup != nil && repo == nil { throw ValidationError("--source-backup needs --repo") }
        try validateJobs(jobs)
    }

    @OptionGroup var metrics: MetricsFlags

    func run() throws {
        do {
            try runReportingErrors {
                let sourceSide: ParitySide
                if let source {
                    sourceSide = .database(source)
                } else {
                    sourceSide = .backup(reference: sourceBackup!, repository: try Repository.open(repo!, create: false, s3: s3.options), keys: keys.keyOptions)
                }
                var options = ParityOptions(source: sourceSide, target: .database(target))
                options.checksum = checksum
                options.include = tables.flatMap { $0.split(separator: ",").map(String.init) }
                options.exclude = exclude.flatMap { $0.split(separator: ",").map(String.init) }
                options.jobs = jobs
                let database = CommandMetrics.databaseLabel(target)
                let report = try metrics.reporting({ (report: ParityReport?, started, finished) in
                    CommandMetrics.parity(database: database, report: report, startedAt: started, finishedAt: finished)
                }) { try ParityEngine(options: options).run() }
                do { try report.csv().write(toFile: csv, atomically: true, encoding: .utf8) } catch {
                    throw DRKitError(.usage, "cannot write \(csv): \(error.localizedDescription)")
                }
                if output.json {
                    Console.shared.output(try JSONText.encode(report))
                } else {
                    Console.shared.output(ParityTable.render(report) + "\nwrote \(csv)")
                }
                if !report.match {
                    let names = report.mismatches.prefix(5).map { "\($0.schema).\($0.table)" }.joined(separator: ", ")
                    throw DRKitError(.checkFailed, "parity failed: \(report.mismatches.count) of \(report.tables.count) tables differ (\(names))")
                }
            }
        } catch let exit as ExitCode where exit.rawValue > 1 {
            throw ExitCode(2)  // parity's contract: 0 parity, 1 mismatch, 2 any error
        }
    }
}

enum ParityTable {
    static func render(_ report: ParityReport) -> String {
        let width = max(20, report.tables.map { $0.schema.count + $0.table.count + 1 }.max() ?? 0)
        var lines = ["TABLE".padding(toLength: width, withPad: " ", startingAt: 0) + "      SOURCE       TARGET  MATCH"]
        for row in report.tables {
            let name = "\(row.schema).\(row.table)".padding(toLength: width, withPad: " ", startingAt: 0)
            let s = row.sourceRows.map(String.init) ?? "missing"
            let t = row.targetRows.map(String.init) ?? "missing"
            let mark = row.match ? "yes" : (row.sourceRows == row.targetRows && row.sourceRows != nil ? "NO (content)" : "NO")
            lines.append("\(name) \(s.leftPadded(12)) \(t.leftPadded(12))  \(mark)")
        }
        let bad = report.mismatches.count
        lines.append(bad == 0 ? "parity: all \(report.tables.count) tables match\(report.checksum ? " (counts and checksums)" : "")"
                              : "parity: \(bad) of \(report.tables.count) tables differ")
        return lines.joined(separator: "\n")
    }
}
