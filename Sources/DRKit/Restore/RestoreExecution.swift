import Archive
import PostgresClient
import Foundation
import Common

/// Runs a restore's phases against the target: pre-data, the planned data and index pass, large
/// objects, sequences, ordered post-data and view refresh. Every object is authenticated,
/// hash-checked and row-counted before its COPY commits.
struct RestoreExecution: Sendable {
    let target: RestoreTarget
    let objects: BackupObjects
    let jobs: Int
    let showProgress: Bool
    let console: Console
    /// The session settings every connection starts with.
    let settings: String

    static func sessionSettings(encoding: String) -> String {
        """
        SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;
        SET client_encoding = \(Connection.quoteLiteral(encoding)); SET DateStyle = ISO; SET IntervalStyle = postgres;
        SET synchronous_commit = off; SET check_function_bodies = false; SET client_min_messages = warning;
        SET maintenance_work_mem = '256MB'
        """
    }

    func connect() throws -> Connection {
        do {
            let connection = try Connection(conninfo: target.conninfo)
            try connection.execute(settings)
            return connection
        } catch {
            throw DRKitError.wrap(error, "cannot connect to \(target.redacted)")
        }
    }

    /// A new connection that has also run a script's preamble.
    func session(preamble: String) -> @Sendable () throws -> Connection {
        let execution = self
        return {
            let connection = try execution.connect()
            try connection.execute(preamble)
            return connection
        }
    }

    /// pg_dump `--table` writes the tables, not their schemas: those the target lacks are created.
    func createSelectedSchemas(_ manifest: BackupManifest, on main: Connection) throws {
        guard let selection = manifest.selection, !selection.tables.isEmpty, selection.schemas.isEmpty else { return }
        for schema in Set(manifest.tables.map(\.schema) + manifest.sequences.map(\.schema)).sorted() {
            do { try main.execute("CREATE SCHEMA IF NOT EXISTS \(Connection.quoteIdentifier(schema))") } catch {
                throw DRKitError.wrap(error, "creating schema \(schema) for the selected tables")
            }
        }
    }

    /// Pre-data, `PreDataPlan.entriesPerTransaction` entries to a transaction. With a table of contents
    /// that matches the script, on `jobs` connections: an entry starts once what it needs has committed
    /// (tables of one schema, the bulk of a large schema, need only the schema). A batch that fails there
    /// (two names racing for one array type name, say) runs again afterwards, entry by entry, in script
    /// order, where an error is the restore's error.
    func runPreData(_ script: DDLScript, toc: DumpTOC?, on main: Connection) throws {
        let batchSize = PreDataPlan.entriesPerTransaction
        guard let toc, let dependencies = PreDataPlan.dependencies(of: script, toc: toc) else {
            do {
                try main.execute(script.preamble)
                for batch in script.entries.chunked(by: batchSize) { try main.execute(batch.map(\.sql).joined(separator: "\n")) }
            } catch { throw DRKitError.wrap(error, "pre-data DDL") }
            return
        }
        let runner = SideBySide(board: WorkBoard(PreDataSchedule(dependencies: dependencies), isFinished: \.isFinished), jobs: jobs,
                                session: session(preamble: script.preamble), context: "pre-data DDL")
        do {
            try runner.run(claim: { schedule -> [Int]? in
                let batch = schedule.next(limit: batchSize)
                return batch.isEmpty ? nil : batch
            }, complete: { $0.complete($1) }) { connection, batch, setAside in
                do { try connection.execute(batch.map { script.entries[$0].runnable }.joined(separator: "\n")) } catch is PostgresError {
                    for index in batch { setAside.add([script.entries[index].runnable], order: index) }
                }
            }
        } catch { throw DRKitError.wrap(error, "pre-data DDL") }
    }

    /// Loads every data object and builds indexes, constraints and statistics in one scheduled pass
    /// (`RestoreScheduler`): each table's indexes start when its own data is in. A pack's tables are
    /// small: their indexes, keys and ANALYZE follow the pack on the worker that loaded it.
    /// Deadlocks between concurrent ALTER TABLEs (partitioned tables) are set aside and run again alone.
    func loadDataAndBuildIndexes(_ plan: RestorePlan, postData: DDLScript) throws {
        let progress = ProgressReporter(label: "restore \(objects.backupId)", totalBytes: plan.units.reduce(0) { $0 + $1.record.plainBytes },
                                        totalObjects: plan.units.count)
        if showProgress { progress.start(console: console) }
        defer { progress.stop(console: console) }
        let board = WorkBoard(plan.scheduler(), isFinished: \.isFinished)
        let stop = { @Sendable () -> Bool in board.failed }
        let runner = SideBySide(board: board, jobs: jobs, session: session(preamble: postData.preamble), context: "post-data DDL")
        try runner.run(claim: { $0.next() }, complete: { $0.complete($1.ticket) }) { connection, claimed, setAside in
            switch claimed.work {
            case .data(let index):
                try load(plan.units[index], index: index, plan: plan, on: connection, progress: progress, stop: stop)
            case .ddl(_, let index):
                let entry = plan.scheduled[index]
                let steps = plan.steps[entry]
                for (step, sql) in steps.enumerated() {
                    do { try connection.execute(sql) } catch let e as PostgresError where e.sqlState == PostgresError.deadlockDetected {
                        setAside.add(Array(steps[step...]), order: entry)
                        break
                    } catch {
                        throw DRKitError.wrap(error, "post-data DDL")
                    }
                }
            case .analyze(let table):
                let t = plan.tables[table]!
                do { try connection.execute("ANALYZE \(Connection.qualified(t.schema, t.name))") } catch {
                    throw DRKitError.wrap(error, "ANALYZE \(t.schema).\(t.name)")
                }
            }
        }
    }

    /// Loads the backup's planner statistics, `RestoreStatistics.entriesPerTransaction` entries to a
    /// transaction, once every index is built. A batch the server refuses runs again entry by entry; a
    /// table whose entry (or one of whose indexes' entry) still fails is analyzed instead, as are tables with extended statistics
    /// (`CREATE STATISTICS`), whose data pg_dump 18 does not carry. Returns the tables analyzed.
    func loadStatistics(_ statistics: RestoreStatistics, tables: [String: TableRecord], loaded: Set<String>, on main: Connection) throws -> [String] {
        var analyze = Set<String>()
        // A table analyzed during the data pass (the source had no statistics for it) keeps what ANALYZE
        // found, for it and its indexes.
        let analyzedEarlier = Set(tables.keys).subtracting(loaded)
        let indexTables = try main.query("""
            SELECT ni.nspname || '.' || ci.relname, nt.nspname || '.' || ct.relname FROM pg_index x
            JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_namespace ni ON ni.oid = ci.relnamespace
            JOIN pg_class ct ON ct.oid = x.indrelid JOIN pg_namespace nt ON nt.oid = ct.relnamespace
            WHERE nt.nspname NOT IN ('pg_catalog', 'information_schema')
            """).rows.reduce(into: [String: String]()) { map, row in if let index = row[0], let table = row[1] { map[index] = table } }
        var batch: [RestoreStatistics.Entry] = []
        func load() throws {
            defer { batch = [] }
            do { try main.execute(batch.map(\.sql).joined(separator: "\n")) } catch is PostgresError {
                for entry in batch {
                    do { try main.execute(entry.sql) } catch is PostgresError { analyze.insert(indexTables[entry.relation] ?? entry.relation) }
                }
            }
        }
        do {
            try statistics.forEachEntry(objects: objects) { entry in
                guard !analyzedEarlier.contains(indexTables[entry.relation] ?? entry.relation) else { return }
                batch.append(entry)
                if batch.count == RestoreStatistics.entriesPerTransaction { try load() }
            }
            if !batch.isEmpty { try load() }
        } catch {
            throw DRKitError.wrap(error, "loading the backup's planner statistics")
        }
        let extended = try main.query("""
            SELECT DISTINCT n.nspname || '.' || c.relname FROM pg_statistic_ext s
            JOIN pg_class c ON c.oid = s.stxrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            """).rows.compactMap { $0[0] }
        analyze.formUnion(extended)
        let tablesToAnalyze = analyze.intersection(loaded).sorted()
        for key in tablesToAnalyze {
            guard let t = tables[key] else { continue }
            do { try main.execute("ANALYZE \(Connection.qualified(t.schema, t.name))") } catch {
                throw DRKitError.wrap(error, "ANALYZE \(t.schema).\(t.name)")
            }
        }
        return tablesToAnalyze
    }

    /// Fills the large objects pre-data created, one transaction per stored object, `jobs` at a time.
    /// A transaction commits only after its object's hash, authentication and count were checked.
    func loadLargeObjects(_ records: [ObjectRecord]) throws {
        let queue = WorkQueue(records)
        try queue.run(workers: jobs, setUp: { _ in try self.connect() }) { connection, record in
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

    func setSequences(_ sequences: [SequenceRecord], on main: Connection) throws {
        for sequence in sequences {
            let name = Connection.quoteLiteral(Connection.qualified(sequence.schema, sequence.name))
            do {
                try main.execute("SELECT pg_catalog.setval(\(name), \(sequence.lastValue), \(sequence.isCalled))")
            } catch { throw DRKitError.wrap(error, "setting sequence \(sequence.schema).\(sequence.name)") }
        }
    }

    /// Post-data entries that run in dump order (triggers, rules, index attachments, policies...), except
    /// that a run of foreign keys (pg_dump writes them together) is spread over `jobs` connections: each
    /// validates its table against the referenced one, the long part of a restore of large tables.
    func runOrderedPostData(_ script: DDLScript, on main: Connection, tables: [String: TableRecord]) throws {
        do {
            try main.execute(script.preamble)
            var foreignKeys: [DDLScript.Entry] = []
            for entry in script.entries where !DDLScript.parallelTypes.contains(entry.type) {
                if entry.type == "FK CONSTRAINT" {
                    foreignKeys.append(entry)
                    continue
                }
                try runForeignKeys(foreignKeys, preamble: script.preamble, on: main, tables: tables)
                foreignKeys = []
                try main.execute(entry.sql)
            }
            try runForeignKeys(foreignKeys, preamble: script.preamble, on: main, tables: tables)
        } catch {
            throw DRKitError.wrap(error, "post-data DDL")
        }
    }

    /// Small tables' keys many to a round trip on `main`; large tables' checks side by side, where two
    /// that lock the same tables in opposite orders can deadlock: those run again one by one.
    private func runForeignKeys(_ all: [DDLScript.Entry], preamble: String, on main: Connection, tables: [String: TableRecord]) throws {
        let (smallBatches, large) = RestorePlanner.foreignKeys(all, tables: tables)
        for batch in smallBatches { try main.execute(batch) }
        guard large.count > 1, jobs > 1 else {
            for entry in large { try main.execute(entry.sql) }
            return
        }
        let runner = SideBySide(board: WorkBoard(ListSchedule(count: large.count), isFinished: \.isFinished), jobs: jobs,
                                session: session(preamble: preamble), context: "post-data DDL")
        try runner.run(claim: { $0.claim() }, complete: { schedule, _ in schedule.complete() }) { connection, index, setAside in
            do { try connection.execute(large[index].sql) } catch let e as PostgresError where e.sqlState == PostgresError.deadlockDetected {
                setAside.add([large[index].sql], order: index)
            }
        }
    }

    /// Refreshes views in dependency order by retrying those that read a view not yet populated.
    func refreshMaterializedViews(_ views: [MaterializedViewRecord], on connection: Connection) throws {
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
