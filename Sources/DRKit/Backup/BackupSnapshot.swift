import Archive
import PostgresClient
import Foundation
import Common

/// Phase 1 of a backup: one coordinator transaction whose exported snapshot every other connection
/// imports. Everything the manifest states about the source (catalog, sequence values, the instant)
/// is read here, inside that snapshot; the transaction stays open until `release()`, holding an ACCESS
/// SHARE lock on every table when two locks per table fit in the server's lock table (`locksEveryTable`).
struct BackupSnapshot {
    let coordinator: Connection
    let id: String
    /// The coordinator holds a lock on every table for the whole backup, as pg_dump does, so a TRUNCATE or
    /// ALTER TABLE waits for it. When the tables are too many for its locks and pg_dump's own to fit the
    /// server's lock table together, it holds none, and each worker locks the tables it copies
    /// (`lockForCopy`): one holder per table at a time, as with pg_dump -j.
    let locksEveryTable: Bool
    /// The server's shared lock table (`lockSlots(on:)`).
    let lockSlots: Int
    let time: Date
    let source: SourceRecord
    let catalog: Catalog
    let sequences: [SequenceRecord]
    let extensions: [ExtensionRecord]
    let largeObjects: [LargeObjects.Entry]
    /// With a change stream: the position the snapshot is consistent at (see `take`).
    var streamPosition: LSN? = nil
    /// Taken on a hot standby: how fresh its data were.
    var standby: StandbyRecord? = nil

    static let sessionSettings = """
        SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;
        SET extra_float_digits = 3; SET DateStyle = ISO; SET IntervalStyle = postgres; SET bytea_output = hex;
        SELECT set_config('client_encoding', current_setting('server_encoding'), false)
        """

    /// `linkStream(database)`: whether the repository streams this database's changes. Then the
    /// snapshot comes from a temporary logical slot (EXPORT_SNAPSHOT), whose consistent point
    /// divides the transactions exactly: those committed before it are in the snapshot, the change
    /// archive replays those after it. The slot goes away with its connection, once imported.
    ///
    /// A table whose storage was replaced between the snapshot and the coordinator's lock (`Outdated`)
    /// makes it take the snapshot again, up to three times (`note` says so).
    static func take(conninfo: String, redacted: String, linkStream: (String) throws -> Bool = { _ in false },
                     note: (String) -> Void = { _ in }) throws -> BackupSnapshot {
        for attempt in 1... {
            do { return try takeOnce(conninfo: conninfo, redacted: redacted, linkStream: linkStream) } catch let outdated as Outdated {
                let tables = outdated.tables.prefix(3).joined(separator: ", ") + (outdated.tables.count > 3 ? " and \(outdated.tables.count - 3) more" : "")
                guard attempt < 3 else {
                    throw DRKitError(.database, "\(tables) changed storage (TRUNCATE, a rewriting ALTER TABLE, VACUUM FULL or CLUSTER) while the backup took its snapshot, three times in a row; nothing was written: run it again when they are quieter")
                }
                note("\(tables) changed storage while the snapshot was taken (TRUNCATE, a rewriting ALTER TABLE, VACUUM FULL or CLUSTER): taking it again")
            }
        }
        fatalError("unreachable")
    }

    private static func takeOnce(conninfo: String, redacted: String, linkStream: (String) throws -> Bool) throws -> BackupSnapshot {
        let coordinator: Connection
        do { coordinator = try Connection(conninfo: conninfo) } catch {
            throw DRKitError.wrap(error, "cannot connect to \(redacted)")
        }
        let (id, time, source, catalog): (String, Date, SourceRecord, Catalog)
        var streamPosition: LSN?
        var inRecovery = false
        var standby: StandbyRecord?
        do {
            try coordinator.execute(sessionSettings)
            let setting = try coordinator.query("SELECT current_database(), current_setting('wal_level'), pg_is_in_recovery()::text").rows[0]
            inRecovery = setting[2] == "true"
            // A standby's backup is not linked: before 16 it cannot decode, and its replay position is not the primary's stream.
            if setting[1] == "logical", !inRecovery, try linkStream(setting[0] ?? "") {
                do {
                    let replication = try ReplicationConnection(conninfo: conninfo)
                    let slot = try replication.createLogicalSlot("drkit_base_\(Hex.encode(SecureRandom.bytes(6)))", temporary: true, exportSnapshot: true)
                    // The exported snapshot lives as long as the slot's connection does: until it is imported.
                    try withExtendedLifetime(replication) {
                        try coordinator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        try coordinator.execute("SET TRANSACTION SNAPSHOT \(Connection.quoteLiteral(slot.snapshot ?? ""))")
                    }
                    streamPosition = slot.consistentPoint
                } catch {
                    throw DRKitError.wrap(error, "linking the backup to the change stream (a temporary logical slot; needs the REPLICATION attribute and a free max_replication_slots entry)")
                }
            } else {
                try coordinator.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            }
            let row = try coordinator.query("""
                SELECT pg_export_snapshot(), to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                       current_database(), current_setting('server_version'), current_setting('server_version_num'),
                       current_setting('server_encoding'), \(Catalog.systemIdentifierExpression),
                       (SELECT oid::text FROM pg_database WHERE datname = current_database())
                """).rows[0]
            id = row[0]!
            time = Timestamps.parse(row[1]!) ?? Date()
            source = SourceRecord(database: row[2]!, serverVersion: row[3]!, serverVersionNum: Int(row[4]!) ?? 0,
                                  systemIdentifier: row[6], encoding: row[5]!, databaseOid: row[7])
            if inRecovery {
                // What a standby's snapshot holds is what it had replayed: its last replayed commit, and how
                // far replay was behind what it had received (nothing behind when it had replayed it all).
                let row = try coordinator.query("""
                    SELECT to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                           CASE WHEN pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
                                ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8::text
                    """).rows[0]
                standby = StandbyRecord(lastReplayedCommit: row[0].flatMap(Timestamps.parse), replayLagSeconds: max(0, Double(row[1] ?? "") ?? 0))
            }
            catalog = try Catalog.read(coordinator)
        } catch {
            throw DRKitError.wrap(error, "reading the catalog of \(redacted)")
        }
        let lockSlots = try lockSlots(on: coordinator)
        let locksEveryTable = catalog.tables.count * 2 + lockMargin <= lockSlots
        if locksEveryTable {
            try lockTables(catalog, on: coordinator)
            // What changed between the snapshot and the locks is found here, while nothing is written yet.
            let replaced = try replacedSinceSnapshot(catalog.tables, on: coordinator)
            guard replaced.isEmpty else { throw Outdated(tables: replaced) }
        }
        var snapshot = BackupSnapshot(coordinator: coordinator, id: id, locksEveryTable: locksEveryTable, lockSlots: lockSlots,
                                      time: time, source: source, catalog: catalog,
                                      sequences: try readSequences(catalog, on: coordinator), extensions: try readExtensions(on: coordinator),
                                      largeObjects: catalog.largeObjects > 0 ? try LargeObjects.list(coordinator) : [])
        snapshot.streamPosition = streamPosition
        snapshot.standby = standby
        return snapshot
    }

    /// Room left in the server's lock table for everything else its sessions lock.
    static let lockMargin = 1000

    /// Some tables' storage was replaced after the snapshot was taken, before the coordinator's locks held
    /// them: a snapshot taken again sees what they hold now.
    struct Outdated: Error {
        let tables: [String]
    }

    /// Keeps every table from being dropped or altered while it is read, as pg_dump does.
    private static func lockTables(_ catalog: Catalog, on coordinator: Connection) throws {
        let names = catalog.tables.map { Connection.qualified($0.schema, $0.name) }
        for batch in names.chunked(by: 500) {
            let list = batch.joined(separator: ", ")
            do { try coordinator.execute("LOCK TABLE ONLY \(list) IN ACCESS SHARE MODE") } catch {
                throw DRKitError.wrap(error, "locking tables for the backup")
            }
        }
    }

    /// The tables among `tables` whose storage is not what `connection`'s snapshot knows (a TRUNCATE, a
    /// rewriting ALTER TABLE, VACUUM FULL or CLUSTER committed since), or that are gone. TRUNCATE and a
    /// rewrite are not MVCC-safe: a snapshot older than them reads the new storage, which holds none of the
    /// rows it should see. Asked with the tables locked, so that nothing changes them after the answer.
    static func replacedSinceSnapshot(_ tables: [CatalogTable], on connection: Connection) throws -> [String] {
        var replaced: [String] = []
        for batch in tables.chunked(by: 500).map(Array.init) {
            let names = batch.map { Connection.quoteLiteral(Connection.qualified($0.schema, $0.name)) }.joined(separator: ", ")
            // pg_class as the snapshot sees it, against the server's relation cache (pg_relation_filenode), which is current.
            let rows = try connection.query("""
                SELECT position FROM unnest(ARRAY[\(names)]::text[]) WITH ORDINALITY AS t(name, position)
                WHERE to_regclass(name) IS NULL
                   OR coalesce(pg_relation_filenode(to_regclass(name)), 0) IS DISTINCT FROM
                      (SELECT relfilenode FROM pg_class WHERE oid = to_regclass(name))
                """).rows
            replaced += rows.compactMap { $0[0].flatMap { Int($0) } }.map { "\(batch[$0 - 1].schema).\(batch[$0 - 1].name)" }
        }
        return replaced
    }

    /// A worker's locks on the tables of its next object, when the coordinator holds none
    /// (`locksEveryTable` false): what changed a table between the snapshot and this lock is found here and
    /// fails the backup, rather than copying a TRUNCATE's new, empty storage as the snapshot's rows.
    static func lockForCopy(_ tables: [CatalogTable], on worker: Connection) throws {
        let list = tables.map { Connection.qualified($0.schema, $0.name) }.joined(separator: ", ")
        do { try worker.execute("LOCK TABLE ONLY \(list) IN ACCESS SHARE MODE") } catch {
            throw DRKitError.wrap(error, "locking \(tables.count == 1 ? list : "\(tables.count) tables") to copy them (dropped since the backup's snapshot?)")
        }
        let replaced = try replacedSinceSnapshot(tables, on: worker)
        guard replaced.isEmpty else {
            throw DRKitError(.database, "\(replaced.joined(separator: ", ")) changed storage after the backup's snapshot (TRUNCATE, a rewriting ALTER TABLE, VACUUM FULL or CLUSTER, at a moment no lock held it): its rows as of the snapshot cannot be read; run the backup again")
        }
    }

    /// Sequence values are not transactional (the snapshot does not hold them); they are read in a
    /// subtransaction rolled back, which releases the lock each read takes: thousands of sequences do not
    /// stay in the lock table for the whole backup.
    private static func readSequences(_ catalog: Catalog, on coordinator: Connection) throws -> [SequenceRecord] {
        do {
            try coordinator.execute("SAVEPOINT drkit_sequences")
            let records = try catalog.sequences.map { sequence in
                let r = try coordinator.query("SELECT last_value::text, is_called::text FROM \(Connection.qualified(sequence.schema, sequence.name))")
                return SequenceRecord(schema: sequence.schema, name: sequence.name, lastValue: r.rows[0][0]!, isCalled: r.rows[0][1] == "true")
            }
            try coordinator.execute("ROLLBACK TO SAVEPOINT drkit_sequences")
            return records
        } catch {
            throw DRKitError.wrap(error, "reading sequence values")
        }
    }

    private static func readExtensions(on coordinator: Connection) throws -> [ExtensionRecord] {
        do {
            return try coordinator.query("SELECT extname::text, extversion FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1").rows.map {
                ExtensionRecord(name: $0[0]!, version: $0[1] ?? "")
            }
        } catch { throw DRKitError.wrap(error, "reading the installed extensions") }
    }

    /// A worker connection reading the same instant.
    static func joinWorker(snapshotId id: String, conninfo: String) throws -> Connection {
        let worker = try Connection(conninfo: conninfo)
        try worker.execute(sessionSettings)
        try worker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try worker.execute("SET TRANSACTION SNAPSHOT \(Connection.quoteLiteral(id))")
        return worker
    }

    /// Ends a worker's transaction and starts another on the same snapshot: what the worker copied is
    /// released (a transaction keeps a lock on every table it read until it ends; the coordinator's locks
    /// keep the tables in place), so thousands of tables do not fill the server's lock table.
    static func renewWorker(_ worker: Connection, snapshotId id: String) throws {
        try worker.execute("COMMIT; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT \(Connection.quoteLiteral(id))")
    }

    /// The server's shared lock table: how many relation locks all sessions together can hold
    /// (`max_locks_per_transaction` × every backend slot the server reserves, as PostgreSQL sizes it).
    private static func lockSlots(on coordinator: Connection) throws -> Int {
        let value = try coordinator.query("""
            SELECT current_setting('max_locks_per_transaction')::int
                   * (current_setting('max_connections')::int + current_setting('autovacuum_max_workers')::int + 1
                      + current_setting('max_worker_processes')::int + current_setting('max_wal_senders')::int
                      + current_setting('max_prepared_transactions')::int)
            """).scalar
        return value.flatMap { Int($0) } ?? 6400
    }

    func release() { _ = try? coordinator.execute("COMMIT") }

    /// The database name globals-only backups are listed under.
    static let globalsDatabase = "(globals)"

    /// The same instant with nothing of the database in it, for a globals-only backup.
    func globalsOnly() -> BackupSnapshot {
        var source = self.source
        source.database = BackupSnapshot.globalsDatabase
        source.databaseOid = nil
        return BackupSnapshot(coordinator: coordinator, id: id, locksEveryTable: locksEveryTable, lockSlots: lockSlots,
                              time: time, source: source, catalog: Catalog(),
                              sequences: [], extensions: [], largeObjects: [], streamPosition: nil)
    }
}
