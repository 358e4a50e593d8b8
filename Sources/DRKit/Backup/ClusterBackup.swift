import Archive
import PostgresClient
import Foundation
import Common

public struct ClusterBackupResult: Sendable {
    public struct Failure: Sendable {
        public var database: String
        public var error: DRKitError
    }

    public var run: String
    public var globals: ClusterGlobals
    public var backups: [BackupResult]
    public var failures: [Failure]
    public var skipped: [String]
}

/// `backup --all-databases`: every database of the cluster that accepts connections (templates
/// aside, and those matching an exclusion), each in its own snapshot and its own backup, all tagged
/// with one run id and carrying the same globals, read once at the start. The list of databases is
/// read at each run, so a new database is picked up without configuration. One database failing does
/// not stop the others; the run reports it.
public enum ClusterBackup {
    /// Run ids look like backup ids, prefixed: `run-20261201T010203456Z-a1b2c3`.
    public static func makeRunId(startedAt: Date = Date()) -> String { "run-" + BackupId.make(startedAt: startedAt) }

    public static func run(options: BackupOptions, excluding patterns: [String], repository: Repository,
                           console: Console = .shared, each: (BackupResult) -> Void = { _ in }) throws -> ClusterBackupResult {
        let runId = makeRunId(startedAt: options.clock?() ?? Date())
        let connection: Connection
        do { connection = try Connection(conninfo: options.conninfo) } catch {
            throw DRKitError.wrap(error, "cannot connect to \((try? ConnectionOptions(options.conninfo).redacted) ?? "the cluster")")
        }
        let names: [String]
        do {
            names = try connection.query("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname").rows.compactMap { $0[0] }
        } catch { throw DRKitError.wrap(error, "listing the databases") }
        let globals = try ClusterGlobals.read(connection, rolePasswords: options.rolePasswords)
        let excluded = names.filter { name in patterns.contains { DatabasePattern.matches($0, name) } }
        let selected = names.filter { !excluded.contains($0) }
        guard !selected.isEmpty else { throw DRKitError(.usage, "--all-databases: every database was excluded (\(names.joined(separator: ", ")))") }
        console.note("run \(runId): \(selected.count) database(s): \(selected.joined(separator: ", "))\(excluded.isEmpty ? "" : "; excluded: \(excluded.joined(separator: ", "))")")
        for line in globals.omitted { console.note("note: \(line)") }
        var result = ClusterBackupResult(run: runId, globals: globals, backups: [], failures: [], skipped: excluded)
        for name in selected {
            var databaseOptions = options
            var conninfo = try ConnectionOptions(options.conninfo)
            conninfo["dbname"] = name
            databaseOptions.conninfo = conninfo.conninfo
            databaseOptions.includeGlobals = true
            databaseOptions.runGlobals = globals
            databaseOptions.run = runId
            do {
                let backup = try BackupEngine(options: databaseOptions, repository: repository, console: console).run()
                result.backups.append(backup)
                each(backup)
            } catch {
                let wrapped = DRKitError.wrap(error, "database \(name)")
                console.note("error: \(wrapped.message)")
                result.failures.append(.init(database: name, error: wrapped))
            }
        }
        return result
    }
}

/// pg_dumpall's `--exclude-database` rules: shell-style wildcards, and a name in double quotes is
/// taken literally (case and all).
public enum DatabasePattern {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        if pattern.count >= 2, pattern.hasPrefix("\""), pattern.hasSuffix("\"") {
            return String(pattern.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"") == name
        }
        return Glob.matches(pattern, name)
    }
}
