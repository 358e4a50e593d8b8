import XCTest
import Foundation
import TestSupport
@testable import DRKit
import PostgresClient
import Common

/// The change archive under the repository's other commands: a backup taken while the stream runs is
/// linked to it, forget removes only segments no kept base needs, repo copy carries the archive (to S3).
final class ChangeArchiveMaintenanceTests: StreamTestCase {
    func testForgetKeepsWhatKeptBasesNeedAndCopyCarriesTheArchiveToS3() throws {
        let database = try newDatabase("pitr_keep", sql: "CREATE TABLE t (id int PRIMARY KEY, v text)")
        let (stream, log) = try startStream(database)
        try waitUntil("the stream's base backup", log: log) { try linkedBase(database) != nil }
        for id in 1...3 { try PostgresClientBridge.execute("INSERT INTO t VALUES (\(id), 'before')", in: database) }
        try waitUntilArchived(database, log: log)
        // A backup taken while the stream runs links itself (no flag).
        let second = try backup(database)
        for id in 4...6 { try PostgresClientBridge.execute("INSERT INTO t VALUES (\(id), 'after'); UPDATE t SET v = v || '!' WHERE id = \(id - 3)", in: database) }
        let afterSecond = try serverNow(database)
        try PostgresClientBridge.execute("INSERT INTO t VALUES (7, 'last')", in: database)
        try waitUntilArchived(database, log: log)
        XCTAssertEqual(stopStream(stream, log: log), 0)

        let repository = try Repository.open(repo, create: false)
        let linked = try repository.backups().filter { $0.summary.database == database && $0.summary.streamPosition != nil }
        XCTAssertEqual(linked.count, 2, "the stream's own base and the backup taken while it ran")
        let secondPosition = try XCTUnwrap(LSN(try XCTUnwrap(linked.first { $0.summary.backupId == second }?.summary.streamPosition)))
        let lineage = try XCTUnwrap(try archive.lineages(database: database).last)
        let before = try archive.segments(of: lineage.lineage)
        XCTAssertTrue(before.contains { $0.name.endPosition <= secondPosition }, "some segments hold only what the second base has")

        let forget = try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "1", "--execute"])
        XCTAssertEqual(forget.status, 0, forget.stderr)
        XCTAssertTrue(forget.stdout.contains("change archive of \(database)"), forget.stdout)
        let after = try archive.segments(of: lineage.lineage)
        XCTAssertEqual(after, before.filter { $0.name.endPosition > secondPosition }, "exactly the segments the kept base needs stay")

        let restored = scratchName("pitr_keep_r")
        XCTAssertEqual(try restore("latest", into: restored, extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(afterSecond)]).status, 0)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT string_agg(id || v, ',' ORDER BY id) FROM t", in: restored), "1before!,2before!,3before!,4after,5after,6after")
        let tooEarly = try restore("latest", into: scratchName("pitr_keep_early"), extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(CommitTime.micros(linked.last!.summary.snapshotTime))])
        assertFailure(tooEarly, exitCode: 2, mentions: "no base backup of \(database) linked to the change stream at or before")
        let verified = try Command.drkit(["verify", "--changes", "--repo", repo, "--key-file", keyFile, "--database", database])
        XCTAssertEqual(verified.status, 0, verified.stderr)

        // The archive goes with `repo copy --all`, sealed as it is, and restores from S3.
        let identities = try TestServices.twoIdentities(in: workDirectory)
        let remote = try TestServices.s3().repository("pitr-\(UUID().uuidString.prefix(8).lowercased())", profile: "moto")
        let copy = try Command.drkit(["repo", "copy", "--all", "--from", repo, "--to", remote], environment: identities)
        XCTAssertEqual(copy.status, 0, copy.stderr)
        XCTAssertTrue(copy.stdout.contains("\(after.count) segment(s) copied"), copy.stdout)
        let again = try Command.drkit(["repo", "copy", "--all", "--from", repo, "--to", remote], environment: identities)
        XCTAssertTrue(again.stdout.contains("0 segment(s) copied"), again.stdout)
        let fromS3 = scratchName("pitr_keep_s3")
        let result = try Command.drkit(["restore", "latest", "--repo", remote, "--target", try conninfo(fromS3), "--key-file", keyFile, "--to-latest"], environment: identities)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(fromS3)), try DatabaseFingerprint.contentHashes(try conninfo(database)))
    }

    /// `--table` replays only that table's changes; `--jobs`, `--clean` and a newer major (the PostgreSQL
    /// 18 test server) work as for any restore.
    func testOneTableAndANewerMajorRestoreToAPointInTime() throws {
        let database = try newDatabase("pitr_parts", sql: """
            CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text);
            INSERT INTO a VALUES (1, 'a1'); INSERT INTO b VALUES (1, 'b1');
            CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY (START 100) UNIQUE, v text);
            INSERT INTO ident (v) VALUES ('i1');
            """)
        let (stream, log) = try startStream(database)
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        try PostgresClientBridge.execute("INSERT INTO a VALUES (2, 'a2'); UPDATE b SET v = 'b1 changed'; INSERT INTO b VALUES (2, 'b2')", in: database)
        try PostgresClientBridge.execute("DELETE FROM a WHERE id = 1; UPDATE a SET v = 'a2 changed' WHERE id = 2", in: database)
        // GENERATED ALWAYS AS IDENTITY refuses given values: the replay still inserts and updates them.
        try PostgresClientBridge.execute("INSERT INTO ident (v) VALUES ('i2'), ('i3'); UPDATE ident SET v = 'i1 changed', n = DEFAULT WHERE id = 1; DELETE FROM ident WHERE id = 2", in: database)
        try waitUntilArchived(database, log: log)
        XCTAssertEqual(stopStream(stream, log: log), 0)

        let one = scratchName("pitr_one")
        let partial = try restore("latest", into: one, extra: ["--key-file", keyFile, "--to-latest", "--table", "public.a", "--jobs", "3"])
        XCTAssertEqual(partial.status, 0, partial.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM a", in: one), "2=a2 changed")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT to_regclass('public.b') IS NULL", in: one), "t")
        // Again over it with --clean: the same result.
        let again = try restore("latest", into: one, extra: ["--key-file", keyFile, "--to-latest", "--clean"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(one)), try DatabaseFingerprint.contentHashes(try conninfo(database)))
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT string_agg(attidentity::text, '') FROM pg_attribute WHERE attrelid = 'ident'::regclass AND attnum > 0", in: one),
                       "aa", "identity columns are ALWAYS again after the replay")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT last_value FROM ident_id_seq", in: one), "3")

        let newer = "pitr_18_\(UInt32.random(in: 0...UInt32.max))"
        defer { if let admin = try? Connection(conninfo: (try? TestServices.postgres18()) ?? "") { _ = try? admin.execute("DROP DATABASE IF EXISTS \(newer) WITH (FORCE)") } }
        let upgraded = try Command.drkit(["restore", "latest", "--repo", repo, "--key-file", keyFile, "--to-latest",
                                          "--target", try TestServices.postgres18(database: newer)])
        XCTAssertEqual(upgraded.status, 0, upgraded.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try TestServices.postgres18(database: newer)),
                       try DatabaseFingerprint.contentHashes(try conninfo(database)))
    }

    /// `key rotate` re-wraps the change archive's key with the backups': after the old key is retired
    /// the archive opens with the new key alone, and a point-in-time restore still works.
    func testKeyRotationCarriesTheChangeArchive() throws {
        let database = try newDatabase("pitr_rotate", sql: "CREATE TABLE t (id int PRIMARY KEY)")
        let (stream, log) = try startStream(database)
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        try PostgresClientBridge.execute("INSERT INTO t VALUES (1)", in: database)
        try waitUntilArchived(database, log: log)
        XCTAssertEqual(stopStream(stream, log: log), 0)
        let newKey = workDirectory.appendingPathComponent("new.key").path
        XCTAssertEqual(try Command.drkit(["key", "generate", "--out", newKey]).status, 0)
        let rotated = try Command.drkit(["key", "rotate", "--repo", repo, "--key-file", keyFile, "--new-key-file", newKey])
        XCTAssertEqual(rotated.status, 0, rotated.stderr)
        let withNew = try Command.drkit(["verify", "--changes", "--repo", repo, "--key-file", newKey])
        XCTAssertEqual(withNew.status, 0, withNew.stderr)
        let withOld = try Command.drkit(["verify", "--changes", "--repo", repo, "--key-file", keyFile])
        assertFailure(withOld, exitCode: 5, mentions: "wrong key")
        let restored = scratchName("pitr_rotate_r")
        let result = try restore("latest", into: restored, extra: ["--key-file", newKey, "--to-latest"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM t", in: restored), "1")
    }

    /// A slot that disappears (here `stream drop`; in life a failover or max_slot_wal_keep_size) is not
    /// resumed as if nothing happened: the next stream says what the old lineage covers, starts a new
    /// lineage with a new base, and restores work from it.
    func testALostSlotStartsANewLineageWithANewBase() throws {
        let database = try newDatabase("pitr_lost", sql: "CREATE TABLE t (id int PRIMARY KEY)")
        let (first, firstLog) = try startStream(database)
        try waitUntil("the linked base backup", log: firstLog) { try linkedBase(database) != nil }
        try PostgresClientBridge.execute("INSERT INTO t VALUES (1)", in: database)
        try waitUntilArchived(database, log: firstLog)
        XCTAssertEqual(stopStream(first, log: firstLog), 0)
        let dropped = try Command.drkit(["stream", "drop", "--db", try conninfo(database)])
        XCTAssertEqual(dropped.status, 0, dropped.stderr)
        let inGap = try serverNow(database)
        try PostgresClientBridge.execute("INSERT INTO t VALUES (2)", in: database)  // while no slot exists: lost to the archive

        let metrics = workDirectory.appendingPathComponent("stream.prom").path
        let (second, secondLog) = try startStream(database, extra: ["--metrics-file", metrics])
        try waitUntil("a base backup for the new lineage", log: secondLog) {
            try Repository.open(repo, create: false).backups().filter { $0.summary.database == database && $0.summary.streamPosition != nil }.count == 2
        }
        try PostgresClientBridge.execute("INSERT INTO t VALUES (3)", in: database)
        try waitUntilArchived(database, log: secondLog)
        XCTAssertEqual(stopStream(second, log: secondLog), 0)
        XCTAssertTrue(logText(secondLog).contains("no longer exists"), logText(secondLog))
        XCTAssertEqual(try archive.lineages(database: database).count, 2)
        let restored = scratchName("pitr_lost_r")
        let result = try restore("latest", into: restored, extra: ["--key-file", keyFile, "--to-latest"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT string_agg(id::text, ',' ORDER BY id) FROM t", in: restored), "1,2,3")

        // The gap is recorded, listed, raised as a metric, and a time inside it is refused naming both ends.
        let lineages = try archive.lineages(database: database)
        XCTAssertEqual(lineages[1].gap?.previousLineage, lineages[0].lineage)
        XCTAssertNil(lineages[0].gap)
        let listed = try Command.drkit(["list", "--changes", "--repo", repo])
        XCTAssertTrue(listed.stdout.contains("GAP before this lineage") && listed.stdout.contains("lineage \(lineages[0].lineage)"), listed.stdout)
        let gauge = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
            .first { $0.hasPrefix("drkit_stream_last_gap_timestamp_seconds{") }
        XCTAssertGreaterThan(Double(try XCTUnwrap(gauge).split(separator: " ").last.map(String.init) ?? "") ?? 0, 0, String(gauge ?? ""))
        let refused = try restore("latest", into: scratchName("pitr_gap"), extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(inGap)])
        assertFailure(refused, exitCode: 2, mentions: "falls in a gap of the change archive of \(database)")
        XCTAssertTrue(refused.stderr.contains("end of lineage \(lineages[0].lineage)"), refused.stderr)
    }

    /// A failover to a real streaming standby (scripts/pg-standby.sh: pg_basebackup -R), promoted after
    /// the stream stopped and rows were written. PostgreSQL 17+: the stream's slot (failover = true) is
    /// synchronized to the standby (sync_replication_slots there, synchronized_standby_slots on the
    /// primary), so the stream pointed at the promoted standby continues its lineage with no gap and
    /// archives the rows written while it was down. Before 17 the standby has no copy of the slot: the
    /// stream finds it gone, records the gap and starts a new lineage with a new base. Either way a
    /// restore to the latest equals the new primary.
    func testFailoverToAPromotedStandbyKeepsTheSlotFrom17OnOrRecordsTheGap() throws {
        let database = try newDatabase("pitr_failover", sql: "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')")
        let admin = try Connection(conninfo: try TestServices.postgres())
        let version = Int(try admin.query("SHOW server_version_num").scalar ?? "") ?? 0
        let synchronized = version >= 170000
        let (standbyPort, physicalSlot) = try startStandby()
        let primaryPort = try XCTUnwrap(try ConnectionOptions(try conninfo(database))["port"])
        func onStandby(_ database: String) throws -> String {
            try conninfo(database).replacingOccurrences(of: "port=\(primaryPort)", with: "port=\(standbyPort)")
        }
        if synchronized {
            try admin.execute("ALTER SYSTEM SET synchronized_standby_slots = '\(physicalSlot)'")
            _ = try admin.query("SELECT pg_reload_conf()")
        }
        let slot = StreamSource.objectName(for: database)
        let (stream, log) = try startStream(database)
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        try PostgresClientBridge.execute("INSERT INTO t SELECT g, 'before' FROM generate_series(2, 100) g", in: database)
        try waitUntilArchived(database, log: log)
        if synchronized {
            let confirmed = try XCTUnwrap(admin.query("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", [slot]).scalar)
            let standby = try Connection(conninfo: try onStandby("postgres"))
            try waitUntil("the stream's slot synchronized to the standby up to \(confirmed)", log: log) {
                try standby.query("SELECT (synced AND confirmed_flush_lsn >= $2::pg_lsn)::text FROM pg_replication_slots WHERE slot_name = $1",
                                  [slot, confirmed]).scalar == "true"
            }
        }
        XCTAssertEqual(stopStream(stream, log: log), 0)
        // Written while no stream runs; then the primary is lost and the standby promoted.
        try PostgresClientBridge.execute("UPDATE t SET v = 'while down' WHERE id <= 10; INSERT INTO t VALUES (200, 'while down')", in: database)
        // The insert position: with synchronous_commit = off the commit may not be written yet (the write
        // position can be before it); the standby gets it once the WAL writer flushes it.
        let primaryEnd = try XCTUnwrap(PostgresClientBridge.scalar("SELECT pg_current_wal_insert_lsn()::text", in: database))
        let standby = try Connection(conninfo: try onStandby("postgres"))
        try waitUntil("the standby to replay up to \(primaryEnd)") {
            try standby.query("SELECT (pg_last_wal_replay_lsn() >= $1::pg_lsn)::text", [primaryEnd]).scalar == "true"
        }
        XCTAssertEqual(try standby.query("SELECT pg_promote()").scalar, "t")

        let promoted = try onStandby(database)
        let (resumed, resumedLog) = try startStream(database, source: promoted)
        if !synchronized {
            try waitUntil("a base backup for the new lineage", log: resumedLog) {
                try Repository.open(repo, create: false).backups().filter { $0.summary.database == database && $0.summary.streamPosition != nil }.count == 2
            }
        }
        let newPrimary = try Connection(conninfo: promoted)
        try newPrimary.execute("INSERT INTO t VALUES (300, 'after the failover'); DELETE FROM t WHERE id = 2")
        let end = try XCTUnwrap(newPrimary.query("SELECT pg_current_wal_insert_lsn()::text").scalar)
        try waitUntil("the stream to store everything of the promoted standby up to \(end)", log: resumedLog) {
            try newPrimary.query("SELECT (confirmed_flush_lsn >= $2::pg_lsn)::text FROM pg_replication_slots WHERE slot_name = $1", [slot, end]).scalar == "true"
        }
        XCTAssertEqual(stopStream(resumed, log: resumedLog), 0)

        let lineages = try archive.lineages(database: database)
        if synchronized {
            XCTAssertEqual(lineages.count, 1, "the lineage goes on through the failover: \(logText(resumedLog))")
            XCTAssertFalse(logText(resumedLog).contains("no longer exists"), logText(resumedLog))
        } else {
            XCTAssertEqual(lineages.count, 2)
            XCTAssertEqual(lineages.last?.gap?.previousLineage, lineages.first?.lineage)
            XCTAssertTrue(logText(resumedLog).contains("no longer exists"), logText(resumedLog))
        }
        let restored = scratchName("pitr_failover_r")
        let result = try restore("latest", into: restored, extra: ["--key-file", keyFile, "--to-latest"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(restored)), try DatabaseFingerprint.contentHashes(promoted))
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FILTER (WHERE v = 'while down') FROM t", in: restored), "10")
    }

    /// The slot dropped under pgbench load while the stream runs (its walsender terminated, as an
    /// invalidation by max_slot_wal_keep_size or an operator would): the stream stops with an error; the
    /// restarted stream (systemd's restart) finds the slot gone, records the gap and starts a new lineage.
    /// A restore to a time before the loss equals the source then, one inside the gap is refused naming
    /// it, and one to the latest equals the source.
    func testASlotDroppedUnderLoadIsAGapAndRestoresOutsideItEqualTheSource() throws {
        let database = try newDatabase("pitr_dropped", sql: "")
        try pgbench(database, ["-i", "-s", "1", "-q"])
        let (stream, log) = try startStream(database, extra: ["--replica-identity-full", "public.pgbench_history"])
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        try pgbench(database, ["-c", "2", "-j", "2", "-t", "50", "-n"])
        let before = try serverNow(database)
        let contentBefore = try DatabaseFingerprint.contentHashes(try conninfo(database))
        try waitUntilArchived(database, log: log)

        let (load, output) = try startPgbench(database, ["-c", "2", "-j", "2", "-T", "4", "-n"])
        // The lineage must end after `before`, or a restore to `before` would fall in the gap: the slot goes
        // once the archive holds a commit of this load (a fixed pause was not always long enough for a segment).
        try waitUntil("a commit of the load archived", log: log) { try (lastArchivedCommit(database) ?? 0) > before }
        let slot = StreamSource.objectName(for: database)
        let admin = try Connection(conninfo: try TestServices.postgres())
        try waitUntil("the slot dropped under load") {
            _ = try admin.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active", [slot])
            _ = try? admin.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [slot])
            return try admin.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", [slot]).scalar == "0"
        }
        stream.waitUntilExit()
        XCTAssertNotEqual(stream.terminationStatus, 0, "a stream whose slot went away stops with an error: \(logText(log))")
        let lastArchived = try XCTUnwrap(lastArchivedCommit(database))
        load.waitUntilExit()
        assertNoFailedTransactions(output: String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))

        let (restarted, restartedLog) = try startStream(database, extra: ["--replica-identity-full", "public.pgbench_history"])
        try waitUntil("a base backup for the new lineage", log: restartedLog) {
            try Repository.open(repo, create: false).backups().filter { $0.summary.database == database && $0.summary.streamPosition != nil }.count == 2
        }
        try pgbench(database, ["-c", "2", "-j", "2", "-t", "20", "-n"])
        try waitUntilArchived(database, log: restartedLog)
        XCTAssertEqual(stopStream(restarted, log: restartedLog), 0)
        XCTAssertTrue(logText(restartedLog).contains("no longer exists"), logText(restartedLog))
        let lineages = try archive.lineages(database: database)
        XCTAssertEqual(lineages.count, 2)
        XCTAssertEqual(lineages.last?.gap?.previousLastCommit, lastArchived)

        let early = scratchName("pitr_dropped_before")
        let restoredBefore = try restore("latest", into: early, extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(before)])
        XCTAssertEqual(restoredBefore.status, 0, restoredBefore.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(early)), contentBefore)
        let inGap = try restore("latest", into: scratchName("pitr_dropped_gap"), extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(lastArchived + 1)])
        assertFailure(inGap, exitCode: 2, mentions: "falls in a gap of the change archive of \(database)")
        let listed = try Command.drkit(["list", "--changes", "--repo", repo])
        XCTAssertTrue(listed.stdout.contains("GAP before this lineage"), listed.stdout)
        let latest = scratchName("pitr_dropped_latest")
        let restoredLatest = try restore("latest", into: latest, extra: ["--key-file", keyFile, "--to-latest"])
        XCTAssertEqual(restoredLatest.status, 0, restoredLatest.stderr)
        try assertSameDatabase(database, latest)
    }
}
