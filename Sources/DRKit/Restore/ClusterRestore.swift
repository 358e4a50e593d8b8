import Archive
import PostgresClient
import Foundation
import Common

public struct ClusterRestoreResult: Sendable {
    public struct Failure: Sendable {
        public var database: String
        public var error: DRKitError
    }

    public var run: String
    public var globals: GlobalsReport
    public var databases: [RestoreResult]
    public var failures: [Failure]
    public var duration: Double
}

/// `restore --run ID --target-cluster CONNINFO`: rebuilds a whole cluster from one
/// `backup --all-databases` run. The roles and tablespaces go first (once), then each database under
/// its own name, each with its owner, privileges and settings; with `--jobs 4` or more, databases are
/// restored side by side, each with at least two workers. Before anything is created, a target
/// that already holds one of those databases with tables in it is refused, unless `clean`.
public enum ClusterRestore {
    public static func run(_ runId: String, targetCluster: String, options: RestoreOptions, repository: Repository,
                           console: Console = .shared, each: @escaping @Sendable (RestoreResult) -> Void = { _ in }) throws -> ClusterRestoreResult {
        let start = Date()
        let files = try repository.backups().filter { $0.summary.run == runId }
            .sorted { $0.summary.database < $1.summary.database }
        guard !files.isEmpty else {
            throw DRKitError(.repository, "no backups of run \(runId) in \(repository.store.location) (`drkit list` shows the runs)")
        }
        let (cluster, maintenance) = try connectCluster(targetCluster)
        let databases = files.map(\.summary.database)
        if !options.clean {
            let occupied = try databases.filter { try holdsTables($0, cluster: cluster, maintenance: maintenance) }
            guard occupied.isEmpty else {
                throw DRKitError(.refused, "the target cluster already holds \(occupied.joined(separator: ", ")) with tables in it; restore into a new cluster, or pass --clean to drop and recreate those databases")
            }
        }
        let globals = try loadGlobals(files[0], keys: options.keys, repository: repository)
        console.note("restore run \(runId) into \(cluster.redacted): roles and tablespaces, then \(files.count) database(s): \(databases.joined(separator: ", "))")
        let report: GlobalsReport
        do { report = try GlobalsRestore.applyCluster(globals, on: maintenance) } catch {
            throw DRKitError.wrap(error, "restoring roles and tablespaces")
        }
        // Databases side by side when there are workers to spare: each keeps at least two.
        let concurrent = min(files.count, max(1, options.jobs / 2))
        let outcomes = Locked([(database: String, outcome: Result<RestoreResult, DRKitError>)]())
        try WorkQueue(files).run(workers: concurrent, setUp: { _ in () }) { _, file in
            var target = cluster
            target["dbname"] = file.summary.database
            var databaseOptions = options
            databaseOptions.reference = file.summary.backupId
            databaseOptions.targetConninfo = target.conninfo
            databaseOptions.globals = .databaseOnly
            databaseOptions.jobs = max(1, options.jobs / concurrent)
            databaseOptions.showProgress = options.showProgress && concurrent == 1
            do {
                let restored = try RestoreEngine(options: databaseOptions, repository: repository, console: console).run()
                outcomes.withLock { $0.append((file.summary.database, .success(restored))) }
                each(restored)
            } catch {
                // One database failing does not stop the others.
                let wrapped = DRKitError.wrap(error)
                console.note("error: database \(file.summary.database): \(wrapped.message)")
                outcomes.withLock { $0.append((file.summary.database, .failure(wrapped))) }
            }
        }
        var result = ClusterRestoreResult(run: runId, globals: report, databases: [], failures: [], duration: 0)
        for (database, outcome) in outcomes.current.sorted(by: { $0.database < $1.database }) {
            switch outcome {
            case .success(let restored):
                result.globals.lines += restored.globals?.lines ?? []
                result.databases.append(restored)
            case .failure(let error):
                result.failures.append(.init(database: database, error: error))
            }
        }
        result.duration = Date().timeIntervalSince(start)
        return result
    }

    /// `restore ID --globals-only --target-cluster CONNINFO`: the roles and tablespaces a backup carries
    /// (any backup made with globals, or a globals-only one), created where the cluster lacks them.
    public static func applyGlobals(of reference: String, targetCluster: String, keys: KeyOptions, repository: Repository) throws -> GlobalsReport {
        let file = try repository.resolve(reference, keys: keys)
        let globals = try loadGlobals(file, keys: keys, repository: repository)
        let (_, connection) = try connectCluster(targetCluster)
        do { return try GlobalsRestore.applyCluster(globals, on: connection) } catch {
            throw DRKitError.wrap(error, "restoring roles and tablespaces")
        }
    }

    /// `--target-cluster`: its options (database `postgres` unless it names one) and a connection to it.
    private static func connectCluster(_ conninfo: String) throws -> (ConnectionOptions, Connection) {
        var cluster: ConnectionOptions
        do { cluster = try ConnectionOptions(conninfo) } catch { throw DRKitError(.usage, "--target-cluster: \(error)") }
        cluster["dbname"] = cluster["dbname"] ?? "postgres"
        do { return (cluster, try Connection(conninfo: cluster.conninfo)) } catch {
            throw DRKitError.wrap(error, "cannot connect to the target cluster (\(cluster.redacted))")
        }
    }

    /// Whether `database` exists on the target with user relations in it (an empty one, like a new
    /// cluster's `postgres`, is restored into as it is).
    private static func holdsTables(_ database: String, cluster: ConnectionOptions, maintenance: Connection) throws -> Bool {
        guard try maintenance.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]).count > 0 else { return false }
        var options = cluster
        options["dbname"] = database
        do {
            let connection = try Connection(conninfo: options.conninfo)
            return Int(try connection.query("""
                SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND \(Catalog.userRelationFilter)
                """).scalar ?? "0") ?? 0 > 0
        } catch {
            throw DRKitError.wrap(error, "inspecting target database \(database)")
        }
    }

    /// The globals a backup carries, opened, hash-checked and decrypted like any object.
    static func loadGlobals(_ file: ManifestFile, keys: KeyOptions, repository: Repository) throws -> ClusterGlobals {
        let opened = try repository.openBackup(file, keys: keys)
        let manifest = opened.manifest
        guard let record = manifest.globals else {
            throw DRKitError(.usage, "backup \(manifest.backupId) carries no roles or other globals (it was made without --globals, --globals-only or --all-databases)")
        }
        return try ClusterGlobals.read(record, from: try opened.objects(in: repository))
    }
}
