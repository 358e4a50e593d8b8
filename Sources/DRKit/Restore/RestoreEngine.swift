import Foundation
import Archive
import Common
import ObjectStorage
import PostgresClient

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
}

/// Restores a backup into a new (or empty) database:
/// pre-data DDL → parallel COPY FROM → sequences → post-data (indexes and constraints in parallel,
/// the rest in order) → materialized view refresh → ANALYZE.
/// Every object is authenticated, hash-checked and row-counted before its COPY commits.
public final class RestoreEngine: Sendable {
    let options: RestoreOptions
    let repository: Repository
    let console: Console

    public init(options: RestoreOptions, repository: Repository, console: Console = .shared) {
        self.options = options
        self.repository = repository
        self.console = console
    }

    /// Tables from this size (plain COPY bytes) are "large": their primary key's or unique constraint's
    /// index is built first, their constraints run once their own data is in, and their foreign keys are
    /// checked side by side. Below it, a second statement or another connection costs more than it saves.
    static let largeTableBytes: Int64 = 16 << 20

    static func isLarge(_ table: TableRecord?) -> Bool { (table?.plainBytes ?? 0) >= largeTableBytes }

    /// Foreign keys of small tables run this many to a transaction: one round trip and one commit each.
    static let foreignKeysPerBatch = 100

    /// A pack's tables get their indexes, keys and ANALYZE this many tables to a transaction, which keeps
    /// its locks (about four per table) well inside the server's lock table with many `--jobs`.
    static let packedTablesPerDDLBatch = 50

    static func sessionSettings(encoding: String) -> String {
        """
        SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;
        SET client_encoding = \(Connection.quoteLiteral(encoding)); SET DateStyle = ISO; SET IntervalStyle = postgres;
        SET synchronous_commit = off; SET check_function_bodies = false; SET client_min_messages = warning;
        SET maintenance_work_mem = '256MB'
        """
    }

    public func run() throws -> RestoreResult {
        let start = Date()
        var phases: [(String, Double)] = []
        var phaseStart = start
        func endPhase(_ name: String) {
            let now = Date()
            phases.append((name, now.timeIntervalSince(phaseStart)))
            phaseStart = now
        }

        let opened = try repository.openBackup(options.reference, keys: options.keys)
        let backupId = opened.backupId
        var manifest = opened.manifest
        if manifest.source.database == BackupSnapshot.globalsDatabase {
            throw DRKitError(.usage, "backup \(backupId) holds only the cluster's globals (roles, tablespaces): apply them with `drkit restore \(backupId) --globals-only --target-cluster CONNINFO`")
        }
        let objects = try opened.objects(in: repository)
        var preData = try readScript(manifest.preData, from: objects)
            .without(owners: options.noOwner, privileges: options.noPrivileges)
        var postData = try readScript(manifest.postData, from: objects)
            .without(owners: options.noOwner, privileges: options.noPrivileges)
        var skipped: [String] = []
        let partial = try partialPlan(manifest, from: objects)
        let plan = partial?.plan
        if let plan {
            (preData, postData) = (plan.filter(preData), plan.filter(postData))
            manifest = PartialRestore.narrow(manifest, to: plan)
            skipped = plan.skipped
        }

        var target = try RestoreTarget(conninfo: options.targetConninfo)
        let globals = try readGlobals(manifest, from: objects)
        var globalsReport: GlobalsReport?
        if let into = options.intoSchema {
            // The plan's schemas, not the manifest's tables: a partitioned table has no rows of its own.
            let schemas = plan?.schemas ?? Set(manifest.tables.map(\.schema))
            guard schemas.count == 1, let source = schemas.first else {
                throw DRKitError(.usage, "--into-schema takes tables of one schema; the selection spans \(schemas.count) schemas (\(schemas.sorted().joined(separator: ", ")))")
            }
            let (pre, preLeftOut) = SchemaRename.apply(preData, from: source, to: into)
            let (post, postLeftOut) = SchemaRename.apply(postData, from: source, to: into)
            (preData, postData) = (pre, post)
            manifest = PartialRestore.rename(manifest, from: source, to: into)
            skipped += (preLeftOut + postLeftOut).map { "\($0): outside schema \(source), expected to exist in the target already" }
            try target.prepareNewSchema(into, source: manifest.source, extensions: manifest.extensions, allowOlderServer: options.allowOlderServer)
        } else {
            try target.prepare(source: manifest.source, encoding: manifest.source.encoding, clean: options.clean,
                               extensions: manifest.extensions, allowOlderServer: options.allowOlderServer)
        }
        for line in skipped { console.note("skipped: \(line)") }
        console.note("restore \(backupId) into \(target.redacted): \(manifest.tables.count) tables, \(manifest.dataObjectCount + (manifest.largeObjects?.count ?? 0)) data objects, \(options.jobs) jobs")
        endPhase("prepare")
        do {
            if let globals, options.globals == .cluster {
                // Roles first: the schema's owners and grants name them.
                do { globalsReport = try GlobalsRestore.applyCluster(globals, on: try target.connectMaintenance()) } catch {
                    throw DRKitError.wrap(error, "restoring roles and tablespaces")
                }
                endPhase("globals")
            }
            let settings = RestoreEngine.sessionSettings(encoding: manifest.source.encoding)
            let main = try connect(target, settings: settings)
            if let selection = manifest.selection, !selection.tables.isEmpty, selection.schemas.isEmpty {
                // pg_dump --table writes the tables, not their schemas: create those the target lacks.
                for schema in Set(manifest.tables.map(\.schema) + manifest.sequences.map(\.schema)).sorted() {
                    do { try main.execute("CREATE SCHEMA IF NOT EXISTS \(Connection.quoteIdentifier(schema))") } catch {
                        throw DRKitError.wrap(error, "creating schema \(schema) for the selected tables")
                    }
                }
            }
            let toc = options.jobs > 1 && options.intoSchema == nil ? partial?.toc ?? tableOfContents(manifest, from: objects) : nil
            try runPreData(preData, toc: toc, on: main, target: target, settings: settings)
            endPhase("pre-data")

            let tables = Dictionary(manifest.tables.map { ($0.qualifiedKey, $0) }, uniquingKeysWith: { a, _ in a })
            try loadDataAndBuildIndexes(manifest, tables: tables, from: objects, postData: postData,
                                        target: target, settings: settings)
            endPhase("data+indexes")
            if let largeObjects = manifest.largeObjects, !largeObjects.isEmpty {
                try loadLargeObjects(largeObjects, from: objects, target: target, settings: settings)
                endPhase("large objects")
            }

            for sequence in manifest.sequences {
                let name = Connection.quoteLiteral(Connection.qualified(sequence.schema, sequence.name))
                do {
                    try main.execute("SELECT pg_catalog.setval(\(name), \(sequence.lastValue), \(sequence.isCalled))")
                } catch { throw DRKitError.wrap(error, "setting sequence \(sequence.schema).\(sequence.name)") }
            }
            try runOrderedPostData(postData, on: main, target: target, settings: settings, tables: tables)
            endPhase("post-data")

            try refreshMaterializedViews(manifest.materializedViews.filter(\.populated), on: main)
            endPhase("refresh")
            if let globals, options.globals != .none, options.intoSchema == nil {
                var report = globalsReport ?? GlobalsReport(omitted: globals.omitted)
                GlobalsRestore.applyDatabase(globals, source: manifest.source.database, target: target.database,
                                             on: try target.connectMaintenance(), report: &report)
                globalsReport = report
            }
        } catch {
            let dropped = target.discard()
            let wrapped = DRKitError.wrap(error)
            let suffix = !dropped ? "" : target.createdSchema.map { " (the new schema \($0) was dropped)" }
                ?? " (the partially restored database \(target.database) was dropped)"
            throw DRKitError(wrapped.code, "restore of \(backupId) failed: \(wrapped.message)\(suffix)")
        }
        return RestoreResult(backupId: backupId, database: target.database, tables: manifest.tables.count,
                             rows: manifest.tables.reduce(0) { $0 + $1.rows },
                             plainBytes: manifest.tables.reduce(0) { $0 + $1.plainBytes },
                             duration: Date().timeIntervalSince(start), phases: phases, globals: globalsReport,
                             largeObjects: manifest.largeObjectCount,
                             partialTables: plan == nil ? nil : manifest.tables.map(\.qualifiedKey), skipped: skipped)
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

    /// Pre-data, `PreDataPlan.entriesPerTransaction` entries to a transaction. With a table of contents
    /// that matches the script, on `--jobs` connections: an entry starts once what it needs has committed
    /// (tables of one schema, the bulk of a large schema, need only the schema). A batch that fails there
    /// (two names racing for one array type name, say) runs again afterwards, entry by entry, in script
    /// order, where an error is the restore's error.
    private func runPreData(_ script: DDLScript, toc: DumpTOC?, on main: Connection, target: RestoreTarget, settings: String) throws {
        let batchSize = PreDataPlan.entriesPerTransaction
        guard let toc, let dependencies = PreDataPlan.dependencies(of: script, toc: toc) else {
            do {
                try main.execute(script.preamble)
                for batch in script.entries.chunked(by: batchSize) { try main.execute(batch.map(\.sql).joined(separator: "\n")) }
            } catch { throw DRKitError.wrap(error, "pre-data DDL") }
            return
        }
        let board = WorkBoard(PreDataSchedule(dependencies: dependencies), isFinished: \.isFinished)
        let retry = Locked([Int]())
        do { try Workers.run(count: options.jobs) { _ in
            do {
                let connection = try self.connect(target, settings: settings)
                try connection.execute(script.preamble)
                while let batch = board.claim({ schedule -> [Int]? in
                    let batch = schedule.next(limit: batchSize)
                    return batch.isEmpty ? nil : batch
                }) {
                    do { try connection.execute(batch.map { script.entries[$0].runnable }.joined(separator: "\n")) } catch is PostgresError {
                        retry.withLock { $0 += batch }
                    }
                    board.update { $0.complete(batch) }
                }
            } catch {
                board.fail(error)
                throw error
            }
        } } catch {
            throw DRKitError.wrap(board.failure ?? error, "pre-data DDL")
        }
        do {
            let again = retry.current.sorted()
            if !again.isEmpty { try main.execute(script.preamble) }
            for index in again { try main.execute(script.entries[index].runnable) }
        } catch { throw DRKitError.wrap(error, "pre-data DDL") }
    }

    /// The backup's globals when this restore applies them; a backup made without `--globals` cannot.
    private func readGlobals(_ manifest: BackupManifest, from objects: BackupObjects) throws -> ClusterGlobals? {
        guard options.globals != .none else { return nil }
        guard let record = manifest.globals else {
            throw DRKitError(.usage, "backup \(manifest.backupId) carries no roles or other globals (it was made without --globals or --all-databases); restore without --globals, creating the roles first, or with --no-owner")
        }
        return try ClusterGlobals.read(record, from: objects)
    }

    private func connect(_ target: RestoreTarget, settings: String) throws -> Connection {
        do {
            let connection = try Connection(conninfo: target.conninfo)
            try connection.execute(settings)
            return connection
        } catch {
            throw DRKitError.wrap(error, "cannot connect to \(target.redacted)")
        }
    }

    private func readScript(_ record: ObjectRecord, from objects: BackupObjects) throws -> DDLScript {
        DDLScript(String(decoding: try objects.contents(of: record), as: UTF8.self))
    }

    /// Loads every data object and builds indexes, constraints and statistics in one scheduled pass
    /// (`RestoreScheduler`): each table's indexes start when its own data is in. A pack's tables are
    /// small: their indexes, keys and ANALYZE follow the pack on the worker that loaded it, many tables
    /// to a transaction in one round trip, instead of thousands of tasks of a statement each.
    private func loadDataAndBuildIndexes(_ manifest: BackupManifest, tables tablesByKey: [String: TableRecord], from backupObjects: BackupObjects,
                                         postData: DDLScript, target: RestoreTarget, settings: String) throws {
        let objects: [DataUnit] = manifest.tables.flatMap { table in table.objects.map { DataUnit.object(table, $0) } }
            + (manifest.packs ?? []).map(DataUnit.pack)
        let parallelEntries = postData.entries.filter { DDLScript.parallelTypes.contains($0.type) }
        // Primary keys and unique constraints of large plain tables build their index beside the table's
        // other index builds; on a small table the second statement would cost more than it saves, and
        // partitions keep pg_dump's statement (their indexes attach to the parent's).
        let entryTables = parallelEntries.map(DDLScript.table(of:))
        let parallelSteps: [[String]] = zip(parallelEntries, entryTables).map { entry, table in
            let record = table.flatMap { tablesByKey[$0] }
            if let record, record.kind != "partition", RestoreEngine.isLarge(record), var steps = DDLScript.indexFirst(entry) {
                if !entry.placement.isEmpty { steps[0] = entry.placement + "\n" + steps[0] }
                return steps
            }
            return [entry.runnable]
        }
        // Larger tables first, each table's objects together (its smallest last chunk too): a table's
        // indexes and ANALYZE then overlap the loading of the tables after it, instead of one small
        // chunk holding back the largest table's index builds to the end.
        var tableBytes: [String: Int64] = [:]
        for unit in objects { for table in unit.tables { tableBytes[table, default: 0] += unit.record.size } }
        let loadOrder = objects.indices.sorted { a, b in
            let key = { (unit: DataUnit) -> (Int64, String, Int64) in
                (-(unit.tables.map { tableBytes[$0] ?? 0 }.max() ?? 0), unit.tables.first ?? "", -unit.record.size)
            }
            return key(objects[a]) < key(objects[b])
        }
        var priority = [Int64](repeating: 0, count: objects.count)
        for (rank, index) in loadOrder.enumerated() { priority[index] = Int64(objects.count - rank) }
        var packOf: [String: Int] = [:]
        for (index, unit) in objects.enumerated() where unit.isPack {
            for table in unit.tables where tablesByKey[table] != nil { packOf[table] = index }
        }
        let packDDL = RestoreEngine.packDDL(objects: objects, packOf: packOf, entries: parallelEntries, entryTables: entryTables, tables: tablesByKey)
        let scheduled = parallelEntries.indices.filter { entryTables[$0].flatMap { packOf[$0] } == nil }
        let scheduler = RestoreScheduler(
            dataObjects: objects.enumerated().map { ($1.tables.filter { tablesByKey[$0] != nil }, $0, priority[$0]) },
            entries: scheduled.map { index in
                let entry = parallelEntries[index]
                // A small table's ADD CONSTRAINT waits for all data, as its ACCESS EXCLUSIVE lock between
                // the loads measured slower for thousands of small tables; a large table's runs once its data is in.
                let table = entryTables[index]
                let early = entry.type == "INDEX" || RestoreEngine.isLarge(table.flatMap { tablesByKey[$0] })
                return (early ? table : nil, entry.type == "INDEX" || parallelSteps[index].count > 1)
            },
            analyze: manifest.tables.map(\.qualifiedKey).filter { packOf[$0] == nil })
        let progress = ProgressReporter(label: "restore \(backupObjects.backupId)", totalBytes: objects.reduce(0) { $0 + $1.record.plainBytes },
                                        totalObjects: objects.count)
        if options.showProgress { progress.start(console: console) }
        defer { progress.stop(console: console) }

        let board = WorkBoard(scheduler, isFinished: \.isFinished)
        let retry = Locked([String]())
        let stop = { @Sendable () -> Bool in board.failed }
        do { try Workers.run(count: options.jobs) { _ in
            let connection = try self.connect(target, settings: settings)
            try connection.execute(postData.preamble)
            while let (ticket, work) = board.claim({ $0.next() }) {
                do {
                    switch work {
                    case .data(let index):
                        switch objects[index] {
                        case .object(let table, let record):
                            try self.load(table, record, from: backupObjects, on: connection, progress: progress, stop: stop)
                        case .pack(let pack):
                            try self.loadPack(pack, tables: tablesByKey, from: backupObjects, on: connection, progress: progress, stop: stop)
                            for batch in packDDL[index] ?? [] {
                                do { try connection.execute(batch) } catch {
                                    throw DRKitError.wrap(error, "post-data DDL of the tables in \(pack.object.name)")
                                }
                            }
                        }
                    case .ddl(_, let index):
                        let steps = parallelSteps[scheduled[index]]
                        for (step, sql) in steps.enumerated() {
                            do { try connection.execute(sql) } catch let e as PostgresError where e.sqlState == PostgresError.deadlockDetected {
                                retry.withLock { $0.append(contentsOf: steps[step...]) }
                                break
                            } catch {
                                throw DRKitError.wrap(error, "post-data DDL")
                            }
                        }
                    case .analyze(let table):
                        let t = tablesByKey[table]!
                        do { try connection.execute("ANALYZE \(Connection.qualified(t.schema, t.name))") } catch {
                            throw DRKitError.wrap(error, "ANALYZE \(t.schema).\(t.name)")
                        }
                    }
                } catch {
                    board.fail(error)
                    throw error
                }
                board.update { $0.complete(ticket) }
            }
        } } catch {
            // The cause, not a worker's "stopped: another worker failed" that reached Workers first.
            throw board.failure ?? error
        }
        // Deadlocks between concurrent ALTER TABLEs (partitioned tables) are retried one by one.
        let deferred = retry.current
        guard !deferred.isEmpty else { return }
        let main = try connect(target, settings: settings)
        try main.execute(postData.preamble)
        for sql in deferred {
            do { try main.execute(sql) } catch { throw DRKitError.wrap(error, "post-data DDL") }
        }
    }

    /// Per pack (by data unit index), its tables' own post-data entries in dump order and then their
    /// ANALYZE, `packedTablesPerDDLBatch` tables to a script (one implicit transaction each).
    private static func packDDL(objects: [DataUnit], packOf: [String: Int], entries: [DDLScript.Entry], entryTables: [String?],
                                tables: [String: TableRecord]) -> [Int: [String]] {
        var statements: [String: [String]] = [:]
        for (entry, table) in zip(entries, entryTables) {
            if let table, packOf[table] != nil { statements[table, default: []].append(entry.runnable) }
        }
        var scripts: [Int: [String]] = [:]
        for (index, unit) in objects.enumerated() where unit.isPack {
            for batch in unit.tables.filter({ packOf[$0] == index }).chunked(by: packedTablesPerDDLBatch) {
                let ddl = batch.flatMap { statements[$0] ?? [] }
                let analyze = batch.compactMap { tables[$0] }.map { "ANALYZE \(Connection.qualified($0.schema, $0.name));" }
                scripts[index, default: []].append((ddl + analyze).joined(separator: "\n"))
            }
        }
        return scripts
    }

    private static func copyInStatement(_ table: TableRecord) -> String {
        let columns = table.columns.isEmpty ? "" : " (" + table.columns.map(Connection.quoteIdentifier).joined(separator: ", ") + ")"
        return "COPY \(Connection.qualified(table.schema, table.name))\(columns) FROM STDIN"
    }

    private func load(_ table: TableRecord, _ record: ObjectRecord, from objects: BackupObjects,
                      on connection: Connection, progress: ProgressReporter, stop: @escaping @Sendable () -> Bool) throws {
        let copy: CopyInWriter
        do { copy = try connection.copyIn(RestoreEngine.copyInStatement(table)) } catch {
            throw DRKitError.wrap(error, "loading \(table.schema).\(table.name)")
        }
        let sink = CopyInSink(copy: copy, progress: progress, stop: stop)
        do {
            _ = try objects.read(record, destination: sink)
            try sink.flushProgress()
            try copy.finish()
            progress.add(bytes: 0, rows: record.rows)
            progress.objectDone(estimate: record.plainBytes)
        } catch {
            copy.abort(reason: "drkit: \(error)")
            throw DRKitError.wrap(error, "loading \(table.schema).\(table.name)")
        }
    }

    /// Loads a pack's tables one after another in one transaction, which commits only after the pack's
    /// hash, authentication and every slice's row count were checked: one commit for hundreds of small
    /// tables. Slices of tables a partial restore left out are read and checked, not loaded.
    private func loadPack(_ pack: PackRecord, tables: [String: TableRecord], from objects: BackupObjects,
                          on connection: Connection, progress: ProgressReporter, stop: @escaping @Sendable () -> Bool) throws {
        var loading: (name: String, copy: CopyInWriter)?
        do {
            try connection.execute("BEGIN")
            _ = try objects.readPack(pack) { index in
                let slice = pack.slices[index]
                guard let table = tables[slice.qualifiedKey] else { return nil }
                let copy = try connection.copyIn(RestoreEngine.copyInStatement(table))
                loading = (slice.qualifiedKey, copy)
                return SliceCopySink(CopyInSink(copy: copy, progress: progress, stop: stop), rows: slice.rows, progress: progress) {
                    loading = nil
                }
            }
            try connection.execute("COMMIT")
            progress.objectDone(estimate: pack.object.plainBytes)
        } catch {
            loading?.copy.abort(reason: "drkit: \(error)")
            _ = try? connection.execute("ROLLBACK")
            throw DRKitError.wrap(error, "loading \(loading?.name ?? pack.object.name)")
        }
    }

    /// Fills the large objects pre-data created, one transaction per stored object, `jobs` at a time.
    /// A transaction commits only after its object's hash, authentication and count were checked.
    private func loadLargeObjects(_ records: [ObjectRecord], from objects: BackupObjects, target: RestoreTarget, settings: String) throws {
        let queue = WorkQueue(records)
        try queue.run(workers: options.jobs, setUp: { _ in try self.connect(target, settings: settings) }) { connection, record in
            do {
                try connection.execute("BEGIN")
                let writer = LargeObjectWriter(connection: connection)
                _ = try objects.readLargeObjects(record) { oid, offset, bytes in
                    if queue.failed { throw DRKitError(.tool, "stopped: another worker failed") }
                    try writer.write(oid: oid, offset: offset, bytes: bytes)
                }
                try connection.execute("COMMIT")
            } catch {
                _ = try? connection.execute("ROLLBACK")
                throw DRKitError.wrap(error, "loading large objects (\(record.name))")
            }
        }
    }

    /// Post-data entries that run in dump order (triggers, rules, index attachments, policies...), except
    /// that a run of foreign keys (pg_dump writes them together) is spread over `jobs` connections: each
    /// validates its table against the referenced one, the long part of a restore of large tables. Two
    /// foreign keys that lock the same tables in opposite orders can deadlock; those run again one by one.
    private func runOrderedPostData(_ script: DDLScript, on main: Connection, target: RestoreTarget, settings: String,
                                    tables: [String: TableRecord]) throws {
        do {
            try main.execute(script.preamble)
            var foreignKeys: [DDLScript.Entry] = []
            for entry in script.entries where !DDLScript.parallelTypes.contains(entry.type) {
                if entry.type == "FK CONSTRAINT" {
                    foreignKeys.append(entry)
                    continue
                }
                try runForeignKeys(foreignKeys, preamble: script.preamble, on: main, target: target, settings: settings, tables: tables)
                foreignKeys = []
                try main.execute(entry.sql)
            }
            try runForeignKeys(foreignKeys, preamble: script.preamble, on: main, target: target, settings: settings, tables: tables)
        } catch {
            throw DRKitError.wrap(error, "post-data DDL")
        }
    }

    private func runForeignKeys(_ all: [DDLScript.Entry], preamble: String, on main: Connection, target: RestoreTarget, settings: String,
                                tables: [String: TableRecord]) throws {
        // Only large tables' checks are worth a connection each: thousands of small tables' foreign keys
        // ran slower side by side (they mostly wait on the lock of the table they reference).
        let large = all.map { RestoreEngine.isLarge(DDLScript.table(of: $0).flatMap { tables[$0] }) }
        let entries = zip(all, large).filter(\.1).map(\.0)
        let small = zip(all, large).filter { !$0.1 }.map(\.0)
        // One statement after another, but many to a round trip: measured faster than one each (the
        // referenced table's trigger list is rebuilt per statement either way; the commits are saved).
        for batch in small.chunked(by: RestoreEngine.foreignKeysPerBatch) { try main.execute(batch.map(\.sql).joined(separator: "\n")) }
        guard entries.count > 1, options.jobs > 1 else {
            for entry in entries { try main.execute(entry.sql) }
            return
        }
        let deadlocked = Locked([DDLScript.Entry]())
        let queue = WorkQueue(entries)
        try queue.run(workers: options.jobs, setUp: { _ in
            let connection = try self.connect(target, settings: settings)
            try connection.execute(preamble)
            return connection
        }) { connection, entry in
            do { try connection.execute(entry.sql) } catch let e as PostgresError where e.sqlState == PostgresError.deadlockDetected {
                deadlocked.withLock { $0.append(entry) }
            }
        }
        for entry in deadlocked.current { try main.execute(entry.sql) }
    }

    /// Refreshes views in dependency order by retrying those that read a view not yet populated.
    private func refreshMaterializedViews(_ views: [MaterializedViewRecord], on connection: Connection) throws {
        var pending = views
        while !pending.isEmpty {
            var failed: [MaterializedViewRecord] = []
            var lastError: Error?
            for view in pending {
                do { try connection.execute("REFRESH MATERIALIZED VIEW \(Connection.qualified(view.schema, view.name))") } catch {
                    failed.append(view)
                    lastError = error
                }
            }
            if failed.count == pending.count, let lastError {
                throw DRKitError.wrap(lastError, "refreshing materialized view \(failed[0].schema).\(failed[0].name)")
            }
            pending = failed
        }
    }
}

/// Feeds decompressed COPY text to the server and counts it for the progress line.
final class CopyInSink: ByteSink {
    private let copy: CopyInWriter
    private let progress: ProgressReporter
    private let stop: @Sendable () -> Bool
    private var pendingBytes: Int64 = 0

    init(copy: CopyInWriter, progress: ProgressReporter, stop: @escaping @Sendable () -> Bool) {
        self.copy = copy
        self.progress = progress
        self.stop = stop
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if stop() { throw DRKitError(.tool, "stopped: another worker failed") }
        try copy.write(bytes)
        pendingBytes += Int64(bytes.count)
        if pendingBytes >= 4 << 20 { try flushProgress() }
    }

    func finish() throws {}

    func finishCopy() throws { try copy.finish() }

    func flushProgress() throws {
        progress.add(bytes: pendingBytes, rows: 0)
        pendingBytes = 0
    }
}

/// One stored object of table rows: a table's own object, or a pack of small tables.
enum DataUnit {
    case object(TableRecord, ObjectRecord)
    case pack(PackRecord)

    var record: ObjectRecord {
        switch self {
        case .object(_, let record): return record
        case .pack(let pack): return pack.object
        }
    }

    var isPack: Bool {
        if case .pack = self { return true }
        return false
    }

    /// The tables it holds rows of, as "schema.name".
    var tables: [String] {
        switch self {
        case .object(let table, _): return [table.qualifiedKey]
        case .pack(let pack): return pack.slices.map(\.qualifiedKey)
        }
    }
}

/// One table's slice of a pack into its COPY: ends the COPY when the slice ends (inside the pack's
/// transaction, so nothing commits before the whole pack is checked).
final class SliceCopySink: ByteSink {
    private let copy: CopyInSink
    private let rows: Int64
    private let progress: ProgressReporter
    private let ended: () -> Void

    init(_ copy: CopyInSink, rows: Int64, progress: ProgressReporter, ended: @escaping () -> Void) {
        self.copy = copy
        self.rows = rows
        self.progress = progress
        self.ended = ended
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws { try copy.write(bytes) }

    func finish() throws {
        try copy.flushProgress()
        try copy.finishCopy()
        ended()
        progress.add(bytes: 0, rows: rows)
    }
}
