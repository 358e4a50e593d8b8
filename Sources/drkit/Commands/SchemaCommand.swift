import ArgumentParser
import DRKit
import Foundation

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The schema snapshot ritual: write the live schema, or diff it against the committed snapshot.",
        subcommands: [Snapshot.self, Diff.self])

    struct Snapshot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the normalized live schema (pg_dump --schema-only --no-owner --no-privileges) under a header.",
            discussion: "The header records the iteration, generation date, changes, git commit (read from the repository around --out) and the server and pg_dump versions.")

        @Option(name: .long, help: ArgumentHelp("Database (conninfo or URL).", valueName: "conninfo"))
        var db: String
        @Option(name: .long, help: ArgumentHelp("Snapshot file to write.", valueName: "path"))
        var out = "db/schema.snapshot.sql"
        @Option(name: .long, help: "Iteration number or name recorded in the header.")
        var iteration: String
        @Option(name: .long, help: "What changed in this iteration, recorded in the header.")
        var changes: String

        func run() throws {
            try runReportingErrors {
                let metadata = try SchemaSnapshot.write(conninfo: db, to: out, iteration: iteration, changes: changes)
                Console.shared.output("wrote \(out) (iteration \(metadata.iteration), git commit \(metadata.gitCommit ?? "none"), PostgreSQL \(metadata.serverVersion))")
            }
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the live schema with a committed snapshot: a unified diff and an object-level summary.",
            discussion: "Both sides are normalized (headers, Dumped-by lines, \\restrict lines, object-header comments, whitespace and CRLF dropped); column order, defaults, comments, constraints and indexes all count. Destructive changes (dropped table or column, narrowed type) are marked. Exit codes follow diff(1): 0 no drift, 1 drift, 2 error.")

        @Option(name: .long, help: ArgumentHelp("Database (conninfo or URL).", valueName: "conninfo"))
        var db: String
        @Option(name: .long, help: ArgumentHelp("Committed snapshot file.", valueName: "path"))
        var snapshot = "db/schema.snapshot.sql"
        @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Ignore objects matching this glob (schema.name, or the owning table's schema.name), e.g. 'public.alembic_version'. Repeatable.", valueName: "glob"))
        var exclude: [String] = []
        @OptionGroup var metrics: MetricsFlags
        @OptionGroup var output: OutputFlags

        func run() throws {
            do {
                try runReportingErrors {
                    let diff = try metrics.reporting({ (diff: SchemaDiff?, started, finished) in
                        CommandMetrics.schemaDiff(database: CommandMetrics.databaseLabel(db), snapshot: snapshot, diff: diff, startedAt: started, finishedAt: finished)
                    }) {
                        try SchemaSnapshot.diff(conninfo: db, snapshotPath: snapshot, exclude: exclude.flatMap { $0.split(separator: ",").map(String.init) })
                    }
                    if output.json {
                        Console.shared.output(try JSONText.encode(SchemaDiffReport(drift: diff.hasDrift, changes: diff.changes, unifiedDiff: diff.unifiedDiff)))
                    } else {
                        Console.shared.output(diff.hasDrift ? diff.unifiedDiff + "\n" + diff.summary : "no drift: the live schema matches \(snapshot)")
                    }
                    if diff.hasDrift {
                        let destructive = diff.changes.filter(\.destructive).count
                        throw DRKitError(.checkFailed, "schema drift: \(diff.changes.count) object change(s) against \(snapshot)\(destructive > 0 ? ", \(destructive) destructive" : "")")
                    }
                }
            } catch let exit as ExitCode where exit.rawValue > 1 {
                throw ExitCode(2)  // diff(1) convention: 2 for any error
            }
        }
    }
}

struct SchemaDiffReport: Encodable {
    var drift: Bool
    var changes: [SchemaChange]
    var unifiedDiff: String
}
