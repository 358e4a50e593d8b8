import Archive
import ArgumentParser
import Common
import DRKit
import Foundation

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into a new scratch database, in parallel.",
        discussion: """
            The target database is created if it does not exist, or used if it is empty. A database with \
            user tables is refused unless --clean (drop and recreate it); the backup's own source database \
            is always refused. On failure a database created by the restore is dropped again. \
            Across versions: restoring into a newer PostgreSQL major than the backup's source is supported (an \
            upgrade path, e.g. 15 -> 18); an older major is refused before anything is created (exit 6), unless \
            --allow-older-server. A target server that lacks an extension the backup uses is refused up front, \
            naming the package to install.
            """)

    @Argument(help: "Backup id (or a unique prefix of one), or `latest`.")
    var backup: String
    @OptionGroup var repository: RepositoryOptions
    @Option(name: .long, help: ArgumentHelp("Target database: libpq conninfo or postgres:// URL naming the database to create.", valueName: "conninfo"))
    var target: String
    @OptionGroup var keys: KeyFlags
    @Option(name: .long, help: "Parallel worker connections.")
    var jobs = 2
    @Flag(name: .long, help: "Drop and recreate the target database if it has user tables.")
    var clean = false
    @Flag(name: .long, help: "Do not restore ownership (ALTER ... OWNER TO): objects belong to the restoring user. For clusters without the source's roles.")
    var noOwner = false
    @Flag(name: .long, help: "Do not restore privileges (GRANT/REVOKE).")
    var noPrivileges = false
    @Flag(name: .long, help: "Try a target server of an older major version than the backup's source (refused by default: its DDL may fail midway).")
    var allowOlderServer = false
    @OptionGroup var output: OutputFlags

    func validate() throws {
        try validateJobs(jobs)
    }

    func run() throws {
        try runReportingErrors {
            Console.shared.quiet = output.quiet
            let repo = try repository.open(create: false)
            var options = RestoreOptions(reference: backup, targetConninfo: target, keys: keys.keyOptions)
            options.jobs = jobs
            options.clean = clean
            options.noOwner = noOwner
            options.noPrivileges = noPrivileges
            options.allowOlderServer = allowOlderServer
            options.showProgress = !output.quiet && !output.json
            let result = try RestoreEngine(options: options, repository: repo).run()
            if output.json {
                Console.shared.output(try JSONText.encode(RestoreReport(result)))
            } else {
                let phases = result.phases.map { "\($0.name) \(Format.seconds($0.seconds))s" }.joined(separator: ", ")
                Console.shared.output("""
                    restore of \(result.backupId) into \(result.database) complete: \(result.tables) tables, \(result.rows) rows
                    restore duration (RTO): \(Format.seconds(result.duration)) s (\(phases))
                    """)
            }
        }
    }
}

struct RestoreReport: Encodable {
    struct Phase: Encodable {
        var name: String
        var seconds: Double
    }

    var backupId: String
    var database: String
    var tables: Int
    var rows: Int64
    var durationSeconds: Double
    var phases: [Phase]

    init(_ result: RestoreResult) {
        backupId = result.backupId
        database = result.database
        tables = result.tables
        rows = result.rows
        durationSeconds = result.duration
        phases = result.phases.map { Phase(name: $0.name, seconds: $0.seconds) }
    }
}
