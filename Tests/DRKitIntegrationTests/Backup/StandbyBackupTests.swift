import XCTest
import Foundation
import TestSupport
@testable import DRKit
import PostgresClient
import Common

/// Backups from a hot standby (scripts/pg-standby.sh: pg_basebackup -R from the test cluster).
final class StandbyBackupTests: DRKitTestCase {
    /// A backup of a standby works and records its last replayed commit as the backup's effective time.
    /// With replay paused while the primary writes, the standby falls behind: past --max-standby-lag the
    /// backup is refused (exit 1, nothing written) unless --allow-standby-lag, which warns; the backup then
    /// holds what the standby had replayed, not the primary's newer rows.
    func testAStandbyBackupRecordsItsReplayAndIsRefusedPastTheLagLimit() throws {
        let database = try newDatabase("standby_src", sql: "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' FROM generate_series(1, 500) g")
        let (port, _) = try startStandby()
        let primaryPort = try XCTUnwrap(try ConnectionOptions(try conninfo(database))["port"])
        let onStandby = try conninfo(database).replacingOccurrences(of: "port=\(primaryPort)", with: "port=\(port)")
        let standbyAdmin = try Connection(conninfo: try conninfo("postgres").replacingOccurrences(of: "port=\(primaryPort)", with: "port=\(port)"))
        // A commit the standby replays (one made before it started has no replay time there).
        try PostgresClientBridge.execute("INSERT INTO t VALUES (600, 'replayed')", in: database)
        let end = try XCTUnwrap(PostgresClientBridge.scalar("SELECT pg_current_wal_insert_lsn()::text", in: database))
        try waitUntilReplayed(standbyAdmin, end)

        let caughtUp = try Command.drkit(["backup", "--db", onStandby, "--repo", repo, "--no-encrypt", "--json"])
        XCTAssertEqual(caughtUp.status, 0, caughtUp.stderr)
        XCTAssertTrue(caughtUp.stderr.contains("is a standby: last replayed commit"), caughtUp.stderr)
        var summaries = try Repository.open(repo, create: false).backups().map(\.summary)
        XCTAssertEqual(summaries.count, 1)
        let effective = try XCTUnwrap(summaries[0].effectiveTime)
        XCTAssertLessThanOrEqual(effective, summaries[0].snapshotTime)

        // Replay paused; the primary goes on: the standby falls behind what it receives.
        _ = try standbyAdmin.query("SELECT pg_wal_replay_pause()")
        try PostgresClientBridge.execute("INSERT INTO t VALUES (1000, 'newer')", in: database)
        let newer = try XCTUnwrap(PostgresClientBridge.scalar("SELECT pg_current_wal_insert_lsn()::text", in: database))
        let deadline = Date().addingTimeInterval(60)
        while try standbyAdmin.query("SELECT (pg_last_wal_receive_lsn() >= $1::pg_lsn)::text", [newer]).scalar != "true", Date() < deadline { usleep(100_000) }
        usleep(2_500_000)
        let refused = try Command.drkit(["backup", "--db", onStandby, "--repo", repo, "--no-encrypt", "--max-standby-lag", "1s"])
        assertFailure(refused, exitCode: 1, mentions: "is a standby whose replay")
        XCTAssertTrue(refused.stderr.contains("--allow-standby-lag"), refused.stderr)
        XCTAssertEqual(try Repository.open(repo, create: false).backups().count, 1, "nothing written")
        let allowed = try Command.drkit(["backup", "--db", onStandby, "--repo", repo, "--no-encrypt", "--max-standby-lag", "1s", "--allow-standby-lag"])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
        XCTAssertTrue(allowed.stderr.contains("warning:") && allowed.stderr.contains("--allow-standby-lag"), allowed.stderr)
        _ = try standbyAdmin.query("SELECT pg_wal_replay_resume()")
        summaries = try Repository.open(repo, create: false).backups().map(\.summary)
        XCTAssertEqual(summaries.count, 2)
        let lagging = try XCTUnwrap(summaries.first { $0.backupId != summaries.last?.backupId } ?? summaries.first)
        XCTAssertLessThan(try XCTUnwrap(lagging.effectiveTime), lagging.snapshotTime.addingTimeInterval(-1))

        let restored = scratchName("standby_r")
        let result = try restore(lagging.backupId, into: restored, extra: [])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM t", in: restored), "501", "the standby's replayed rows, not the primary's newer one")
    }

    private func waitUntilReplayed(_ standby: Connection, _ lsn: String) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if try standby.query("SELECT (pg_last_wal_replay_lsn() >= $1::pg_lsn)::text", [lsn]).scalar == "true" { return }
            usleep(100_000)
        }
        XCTFail("the standby did not replay up to \(lsn) in 60 s")
    }
}
