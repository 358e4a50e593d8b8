import Archive
import PostgresClient
import ObjectStorage
import Foundation
import Common

public struct RestoreOptions: Sendable {
    public var reference: String
    public var targetConninfo: String
    public var jobs: Int = 2
    public var clean = false
    /// Leave out `ALTER ... OWNER TO` and privilege (ACL) statements: for a cluster without the source's roles.
    public var noOwner = false
    public var noPrivileges = false
    /// Try a target server of an older major version than the backup's source (refused by default).
    public var allowOlderServer = false
    public var showProgress = true
    public var keys: KeyOptions
    /// `.cluster`: create the backup's missing roles and tablespaces before the schema (`--globals`),
    /// then give the database its source's owner, privileges and settings. `.databaseOnly`: the latter
    /// alone (a whole-cluster restore applies the roles once, first).
    public var globals: GlobalsScope = .none
    /// A partial restore: tables (and whole schemas) matching these pg_dump patterns, with the DDL they need.
    public var tables: [String] = []
    public var schemas: [String] = []
    /// With a partial restore: into this new schema of the existing target database.
    public var intoSchema: String?
    /// A point-in-time restore (`--to-time`, `--to-lsn`, `--to-latest`): the newest linked base backup
    /// at or before the target (or the one `reference` names), then the change archive replayed to it.
    public var pointInTime: RecoveryTarget?
    /// ANALYZE every table even when the backup carries planner statistics the target could load.
    public var analyze = false

    public enum GlobalsScope: Sendable { case none, cluster, databaseOnly }

    public init(reference: String, targetConninfo: String, keys: KeyOptions) {
        self.reference = reference
        self.targetConninfo = targetConninfo
        self.keys = keys
    }
}

public struct RestoreResult: Sendable {
    public var backupId: String
    public var database: String
    public var tables: Int
    public var rows: Int64
    public var plainBytes: Int64
    /// Wall time of the whole restore: the RTO figure.
    public var duration: Double
    public var phases: [(name: String, seconds: Double)]
    /// What restoring the globals did (with `--globals`).
    public var globals: GlobalsReport?
    public var largeObjects: Int64 = 0
    /// A partial restore: the tables restored, and what was left out (foreign keys to tables not restored...).
    public var partialTables: [String]?
    public var skipped: [String] = []
    /// A point-in-time restore: what the replay of the change archive did.
    public var replay: ReplayReport?
}

/// Restores a backup into a new (or empty) database, in phases: open the backup, choose what to
/// restore (all of it, or a partial selection, perhaps into a new schema), prepare the target, then
/// run globals → pre-data → data and indexes (`RestorePlanner`, `RestoreExecution`) → large objects →
/// sequences → ordered post-data → view refresh → the database's own globals. A failure drops what
/// the restore created.
public final class RestoreEngine: Sendable {
    let options: RestoreOptions
    let repository: Repository
    let console: Console

    public init(options: RestoreOptions, repository: Repository, console: Console = .shared) {
        self.options = options
        self.repository = repository
        self.console = console
    }

    /// What a restore runs: the manifest as narrowed by a partial selection, its two scripts, the
    /// partial plan (with the table of contents it came from) and what was left out.
    struct Work {
        var manifest: BackupManifest
        var preData: DDLScript
        var postData: DDLScript
        var partial: (plan: PartialRestorePlan, toc: DumpTOC)?
        var skipped: [String] = []
    }

    public func run() throws -> RestoreResult {
        var clock = PhaseClock()
        let pointInTime = try options.pointInTime.map { target -> (plan: PointInTimePlan, dataKey: [UInt8]?) in
            let plan = try PointInTimePlan.make(reference: options.reference, target: target, repository: repository, keys: options.keys)
            return (plan, try StreamArchive(repository: repository).dataKey(of: plan.lineage, keys: options.keys))
        }
        let opened = try pointInTime.map { try repository.openBackup($0.plan.base, keys: options.keys) }
            ?? repository.openBackup(options.reference, keys: options.keys)
        if let plan = pointInTime?.plan {
            console.note("point-in-time restore to \(plan.target): base \(plan.base.summary.backupId) (at \(plan.basePosition)), then \(plan.segments.count) change segment(s) of lineage \(plan.lineage.lineage)")
        }
        if opened.manifest.source.database == BackupSnapshot.globalsDatabase {
            throw DRKitError(.usage, "backup \(opened.backupId) holds only the cluster's globals (roles, tablespaces): apply them with `drkit restore \(opened.backupId) --globals-only --target-cluster CONNINFO`")
        }
        let objects = try opened.objects(in: repository)
        var work = try choose(opened.manifest, from: objects)
        let globals = try readGlobals(work.manifest, from: objects)
        let target = try prepareTarget(&work)
        for line in work.skipped { console.note("skipped: \(line)") }
        console.note("restore \(opened.backupId) into \(target.redacted): \(work.manifest.tables.count) tables, \(work.manifest.dataObjectCount + (work.manifest.largeObjects?.count ?? 0)) data objects, \(options.jobs) jobs")
        clock.end("prepare")
        let globalsReport: GlobalsReport?
        let replayReport: ReplayReport?
        do {
            (globalsReport, replayReport) = try execute(work, objects: objects, target: target, globals: globals, pointInTime: pointInTime, clock: &clock)
        } catch {
            let dropped = target.discard()
            let wrapped = DRKitError.wrap(error)
            let suffix = !dropped ? "" : target.createdSchema.map { " (the new schema \($0) was dropped)" }
                ?? " (the partially restored database \(target.database) was dropped)"
            throw DRKitError(wrapped.code, "restore of \(opened.backupId) failed: \(wrapped.message)\(suffix)")
        }
        let manifest = work.manifest
        return RestoreResult(backupId: opened.backupId, database: target.database, tables: manifest.tables.count,
                             rows: manifest.tables.reduce(0) { $0 + $1.rows },
                             plainBytes: manifest.tables.reduce(0) { $0 + $1.plainBytes },
                             duration: clock.total, phases: clock.phases, globals: globalsReport,
                             largeObjects: manifest.largeObjectCount,
                             partialTables: work.partial == nil ? nil : manifest.tables.map(\.qualifiedKey), skipped: work.skipped,
                             replay: replayReport)
    }

    /// The phases that write to the target, in order, each timed.
    private func execute(_ work: Work, objects: BackupObjects, target: RestoreTarget, globals: ClusterGlobals?,
                         pointInTime: (plan: PointInTimePlan, dataKey: [UInt8]?)?,
                         clock: inout PhaseClock) throws -> (GlobalsReport?, ReplayReport?) {
        let manifest = work.manifest
        var globalsReport: GlobalsReport?
        if let globals, options.globals == .cluster {
            // Roles first: the schema's owners and grants name them.
            do { globalsReport = try GlobalsRestore.applyCluster(globals, on: try target.connectMaintenance()) } catch {
                throw DRKitError.wrap(error, "restoring roles and tablespaces")
            }
            clock.end("globals")
        }
        let run = RestoreExecution(target: target, objects: objects, jobs: options.jobs, showProgress: options.showProgress, console: console,
                                   settings: RestoreExecution.sessionSettings(encoding: manifest.source.encoding))
        let main = try run.connect()
        try run.createSelectedSchemas(manifest, on: main)
        let toc = options.jobs > 1 && options.intoSchema == nil ? work.partial?.toc ?? tableOfContents(manifest, from: objects) : nil
        try run.runPreData(work.preData, toc: toc, on: main)
        clock.end("pre-data")
        let statistics = try plannerStatistics(work, objects: objects, targetVersionNum: target.serverVersionNum)
        let statisticsLoaded = statistics?.covered(manifest.tables.map(\.qualifiedKey)) ?? []
        let plan = RestorePlanner.plan(manifest, postData: work.postData, statisticsLoaded: statisticsLoaded)
        try run.loadDataAndBuildIndexes(plan, postData: work.postData)
        clock.end("data+indexes")
        if let largeObjects = manifest.largeObjects, !largeObjects.isEmpty {
            try run.loadLargeObjects(largeObjects)
            clock.end("large objects")
        }
        try run.setSequences(manifest.sequences, on: main)
        try run.runOrderedPostData(work.postData, on: main, tables: plan.tables)
        clock.end("post-data")
        if let statistics {
            let analyzed = try run.loadStatistics(statistics, tables: plan.tables, loaded: statisticsLoaded, on: main)
            console.note("planner statistics of \(statisticsLoaded.count - analyzed.count) tables loaded from the backup"
                         + (analyzed.isEmpty ? "" : "; \(analyzed.count) analyzed instead (extended statistics or refused entries)"))
            clock.end("statistics")
        }
        var replayReport: ReplayReport?
        if let pointInTime {
            let replay = ChangeReplay(plan: pointInTime.plan, archive: StreamArchive(repository: repository), dataKey: pointInTime.dataKey,
                                      tables: work.partial == nil ? nil : Set(manifest.tables.map { "\($0.schema).\($0.name)" }),
                                      renamedSchema: renamedSchema(work), console: console, showProgress: options.showProgress)
            replayReport = try replay.run(on: main)
            clock.end("replay")
        }
        try run.refreshMaterializedViews(manifest.materializedViews.filter(\.populated), on: main)
        clock.end("refresh")
        if let globals, options.globals != .none, options.intoSchema == nil {
            var report = globalsReport ?? GlobalsReport(omitted: globals.omitted)
            GlobalsRestore.applyDatabase(globals, source: manifest.source.database, target: target.database,
                                         on: try target.connectMaintenance(), report: &report)
            globalsReport = report
        }
        return (globalsReport, replayReport)
    }

    /// The backup's planner statistics, when they can replace ANALYZE: a whole restore (a partial one may
    /// rename its schema or leave tables out), onto PostgreSQL 18+, without `--analyze`.
    private func plannerStatistics(_ work: Work, objects: BackupObjects, targetVersionNum: Int) throws -> RestoreStatistics? {
        guard let record = work.manifest.statistics, work.partial == nil, !options.analyze, targetVersionNum >= 180000 else { return nil }
        do {
            return try RestoreStatistics.survey(record, objects: objects)
        } catch {
            throw DRKitError.wrap(error, "reading the backup's planner statistics")
        }
    }

    /// `--into-schema`: the archive names the source schema; the replay writes into the new one.
    private func renamedSchema(_ work: Work) -> (from: String, to: String)? {
        guard let into = options.intoSchema, let source = work.partial?.plan.schemas.first else { return nil }
        return (source, into)
    }

    /// The scripts without owners or privileges when asked, narrowed to a partial selection.
    private func choose(_ manifest: BackupManifest, from objects: BackupObjects) throws -> Work {
        var work = Work(manifest: manifest,
                        preData: try readScript(manifest.preData, from: objects).without(owners: options.noOwner, privileges: options.noPrivileges),
                        postData: try readScript(manifest.postData, from: objects).without(owners: options.noOwner, privileges: options.noPrivileges),
                        partial: try partialPlan(manifest, from: objects))
        if let plan = work.partial?.plan {
            (work.preData, work.postData) = (plan.filter(work.preData), plan.filter(work.postData))
            work.manifest = PartialRestore.narrow(manifest, to: plan)
            work.skipped = plan.skipped
        }
        return work
    }

    /// A new database (or, with --clean, an emptied one); with --into-schema a new schema of an
    /// existing database, the work renamed into it.
    private func prepareTarget(_ work: inout Work) throws -> RestoreTarget {
        var target = try RestoreTarget(conninfo: options.targetConninfo)
        guard let into = options.intoSchema else {
            try target.prepare(source: work.manifest.source, encoding: work.manifest.source.encoding, clean: options.clean,
                               extensions: work.manifest.extensions, allowOlderServer: options.allowOlderServer)
            return target
        }
        // The plan's schemas, not the manifest's tables: a partitioned table has no rows of its own.
        let schemas = work.partial?.plan.schemas ?? Set(work.manifest.tables.map(\.schema))
        guard schemas.count == 1, let source = schemas.first else {
            throw DRKitError(.usage, "--into-schema takes tables of one schema; the selection spans \(schemas.count) schemas (\(schemas.sorted().joined(separator: ", ")))")
        }
        let (pre, preLeftOut) = SchemaRename.apply(work.preData, from: source, to: into)
        let (post, postLeftOut) = SchemaRename.apply(work.postData, from: source, to: into)
        (work.preData, work.postData) = (pre, post)
        work.manifest = PartialRestore.rename(work.manifest, from: source, to: into)
        work.skipped += (preLeftOut + postLeftOut).map { "\($0): outside schema \(source), expected to exist in the target already" }
        try target.prepareNewSchema(into, source: work.manifest.source, extensions: work.manifest.extensions, allowOlderServer: options.allowOlderServer)
        return target
    }

    /// The partial restore's plan, with the backup's table of contents it comes from (which pre-data
    /// uses too); nil for a whole restore.
    private func partialPlan(_ manifest: BackupManifest, from objects: BackupObjects) throws -> (plan: PartialRestorePlan, toc: DumpTOC)? {
        guard !options.tables.isEmpty || !options.schemas.isEmpty else {
            if options.intoSchema != nil { throw DRKitError(.usage, "--into-schema goes with --table or --schema") }
            return nil
        }
        guard let record = manifest.ddlIndex else {
            throw DRKitError(.usage, "backup \(manifest.backupId) has no table of contents of its DDL (it was made before drkit recorded one): restore it whole into a scratch database and copy the table from there (docs/runbooks/restore-one-table.md)")
        }
        let toc = try readTableOfContents(record, of: manifest, from: objects)
        return (try PartialRestorePlan.make(toc: toc, tablePatterns: options.tables, schemaPatterns: options.schemas), toc)
    }

    private func readTableOfContents(_ record: ObjectRecord, of manifest: BackupManifest, from objects: BackupObjects) throws -> DumpTOC {
        do { return try JSONDecoder().decode(DumpTOC.self, from: Data(try objects.contents(of: record))) } catch let error as DRKitError {
            throw error
        } catch {
            throw DRKitError(.integrity, "the table of contents of backup \(manifest.backupId) is not valid: \(error)")
        }
    }

    /// The table of contents, for running pre-data on several connections; nil (one connection) when the
    /// backup has none or it cannot be read, which a whole restore does not otherwise need.
    private func tableOfContents(_ manifest: BackupManifest, from objects: BackupObjects) -> DumpTOC? {
        guard let record = manifest.ddlIndex else { return nil }
        do { return try readTableOfContents(record, of: manifest, from: objects) } catch {
            console.note("note: pre-data runs on one connection: \(DRKitError.wrap(error).message)")
            return nil
        }
    }

    /// The backup's globals when this restore applies them; a backup made without `--globals` cannot.
    private func readGlobals(_ manifest: BackupManifest, from objects: BackupObjects) throws -> ClusterGlobals? {
        guard options.globals != .none else { return nil }
        guard let record = manifest.globals else {
            throw DRKitError(.usage, "backup \(manifest.backupId) carries no roles or other globals (it was made without --globals or --all-databases); restore without --globals, creating the roles first, or with --no-owner")
        }
        return try ClusterGlobals.read(record, from: objects)
    }

    private func readScript(_ record: ObjectRecord, from objects: BackupObjects) throws -> DDLScript {
        DDLScript(String(decoding: try objects.contents(of: record), as: UTF8.self))
    }
}

/// Wall time per phase of a restore: the RTO figure and where it went.
struct PhaseClock {
    private let start = Date()
    private var phaseStart = Date()
    private(set) var phases: [(name: String, seconds: Double)] = []

    mutating func end(_ name: String) {
        let now = Date()
        phases.append((name, now.timeIntervalSince(phaseStart)))
        phaseStart = now
    }

    var total: Double { Date().timeIntervalSince(start) }
}
