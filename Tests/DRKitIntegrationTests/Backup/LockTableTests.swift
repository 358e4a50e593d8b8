import XCTest
import Foundation
import TestSupport
@testable import DRKit
import PostgresClient
import Common

/// The server's shared lock table, and what a backup's locks protect. The small-lock cluster
/// (`TestServices.smallLockTable`, max_locks_per_transaction 10: 1,320 slots) stands for a server whose
/// tables outnumber what two locks each fit, as 10,000 tables do on default settings.
final class LockTableTests: DRKitTestCase {
    private var smallClusterDatabases: [String] = []

    override func tearDown() {
        TestServices.dropDatabases(smallClusterDatabases, on: { try TestServices.smallLockTable() })
        super.tearDown()
    }

    /// A database on the small-lock cluster with `tables` tables t1..tN of `rows` rows each (and tables
    /// `a` of 100 rows and `b` of 10), created 100 tables to a transaction.
    private func smallClusterDatabase(_ prefix: String, tables: Int, rows: Int) throws -> String {
        let name = try TestServices.createDatabase(prefix, on: { try TestServices.smallLockTable() })
        smallClusterDatabases.append(name)
        let connection = try Connection(conninfo: try TestServices.smallLockTable(database: name))
        try connection.execute("""
            CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, 'before' FROM generate_series(1, 100) g;
            CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 10);
            """)
        for start in stride(from: 1, through: tables, by: 100) {
            let statements = (start..<min(start + 100, tables + 1)).map {
                "CREATE TABLE t\($0) (id int PRIMARY KEY, v text); INSERT INTO t\($0) SELECT g, md5(g::text) FROM generate_series(1, \(rows)) g;"
            }
            try connection.execute(statements.joined(separator: " "))
        }
        return name
    }

    private func lockEveryTable(_ connection: Connection) throws {
        let names = try connection.query("SELECT string_agg(oid::regclass::text, ', ') FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace").scalar ?? ""
        try connection.execute("BEGIN; LOCK TABLE \(names) IN ACCESS SHARE MODE")
    }

    /// 2,400 tables on 1,320 lock slots: one session holding every table's lock fits (the spare shared
    /// memory takes the rest), two do not ("out of shared memory", checked first: what a backup whose
    /// coordinator and pg_dump both hold every table met). The backup holds one lock per table at a time
    /// (pg_dump's; the coordinator holds none, workers lock what they copy), succeeds, and restores equal.
    func testManyTablesOnASmallLockTableBackUpAndRestoreEqual() throws {
        let database = try smallClusterDatabase("locks_many", tables: 2400, rows: 2)
        let source = try TestServices.smallLockTable(database: database)
        let first = try Connection(conninfo: source), second = try Connection(conninfo: source)
        try lockEveryTable(first)
        XCTAssertThrowsError(try lockEveryTable(second), "two holders of every table's lock must not fit this lock table") { error in
            XCTAssertEqual((error as? PostgresError)?.sqlState, "53200", "\(error)")
        }
        try first.execute("ROLLBACK")
        _ = try? second.execute("ROLLBACK")

        let backedUp = try Command.drkit(["backup", "--db", source, "--repo", repo, "--key-file", keyFile, "--json"])
        XCTAssertEqual(backedUp.status, 0, backedUp.stderr)
        let manifest = try openManifest("latest")
        XCTAssertEqual(manifest.tables.count, 2402)
        XCTAssertEqual(manifest.tables.reduce(0) { $0 + $1.rows }, 2400 * 2 + 110)

        let restored = scratchName("locks_many_r")
        let result = try restore("latest", into: restored, extra: ["--key-file", keyFile])
        XCTAssertEqual(result.status, 0, result.stderr)
        let sourceHashes = try DatabaseFingerprint.contentHashes(source)
        XCTAssertEqual(sourceHashes.count, 2402)
        XCTAssertEqual(sourceHashes, try DatabaseFingerprint.contentHashes(try conninfo(restored)))
    }

    /// A TRUNCATE committed after the backup's snapshot, before its lock on the table: a snapshot older
    /// than a TRUNCATE reads the new, empty storage, so the backup would hold `a` empty — neither the
    /// snapshot's 100 rows nor the 5 written after. Choreographed with a lock: the test holds `a`
    /// ACCESS EXCLUSIVE, starts the backup, waits until a backup session waits for `a` (its snapshot is
    /// taken by then), truncates and refills `a`, adds a row to `b`, commits.
    /// With the coordinator holding every table (this server), the backup takes its snapshot again and
    /// holds the state after the commit (5 rows, 11). Where workers lock what they copy (the small-lock
    /// cluster), the worker's check fails the backup, naming the table; nothing is committed.
    func testATableTruncatedAfterTheSnapshotIsNeverBackedUpEmpty() throws {
        // 600 tables before public.a in the catalog's order: its check is in the second batch of 500.
        let onMainServer = try newDatabase("locks_truncate", sql: """
            CREATE SCHEMA filler; DO $$ BEGIN FOR i IN 1..600 LOOP EXECUTE format('CREATE TABLE filler.f%s (id int)', i); END LOOP; END $$;
            CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, 'before' FROM generate_series(1, 100) g;
            CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 10);
            """)
        let retaken = try backupRacingATruncate(try conninfo(onMainServer))
        XCTAssertEqual(retaken.status, 0, retaken.stderr)
        XCTAssertTrue(retaken.stderr.contains("public.a changed storage while the snapshot was taken") && retaken.stderr.contains("taking it again"), retaken.stderr)
        let manifest = try openManifest("latest")
        XCTAssertEqual(manifest.tables.first { $0.name == "a" }?.rows, 5, "a as of after the TRUNCATE's commit")
        XCTAssertEqual(manifest.tables.first { $0.name == "b" }?.rows, 11, "b of the same instant")

        let onSmallCluster = try smallClusterDatabase("locks_truncate", tables: 200, rows: 1)
        let failed = try backupRacingATruncate(try TestServices.smallLockTable(database: onSmallCluster))
        assertFailure(failed, exitCode: 3, mentions: "public.a changed storage after the backup's snapshot")
        XCTAssertEqual(try Repository.open(repo, create: false).backups().count, 1, "nothing committed")
    }

    private func backupRacingATruncate(_ source: String) throws -> CommandResult {
        let holder = try Connection(conninfo: source)
        try holder.execute("BEGIN; LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
        let stderr = Pipe()
        let backup = try Command.startDrkit(["backup", "--db", source, "--repo", repo, "--key-file", keyFile], stderr: stderr)
        let deadline = Date().addingTimeInterval(60)
        while try holder.query("SELECT count(*) FROM pg_locks WHERE relation = 'a'::regclass AND NOT granted").scalar == "0" {
            guard backup.isRunning, Date() < deadline else {
                _ = try? holder.execute("ROLLBACK")
                backup.waitUntilExit()
                XCTFail("no backup session waited for a's lock: \(String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
                return CommandResult(status: backup.terminationStatus, stdout: "", stderr: "", stdoutBytes: Data())
            }
            usleep(20_000)
        }
        try holder.execute("TRUNCATE a; INSERT INTO a SELECT g, 'after' FROM generate_series(1, 5) g; INSERT INTO b VALUES (11); COMMIT")
        let output = stderr.fileHandleForReading.readDataToEndOfFile()
        backup.waitUntilExit()
        return CommandResult(status: backup.terminationStatus, stdout: "", stderr: String(decoding: output, as: UTF8.self), stdoutBytes: Data())
    }
}
