import XCTest
import Foundation
import TestSupport
@testable import DRKit
import PostgresClient
import Common

/// `drkit stream` and `restore --to-time`, against the real server (wal_level = logical).
final class PointInTimeTests: StreamTestCase {
    /// Every column type the round-trip tests use, with a TOASTed value that UPDATEs leave untouched.
    static let typedTable = """
        CREATE TABLE kinds (id serial PRIMARY KEY, tags text[], doc jsonb, blob bytea, money numeric(14,2),
                            at timestamptz, note text, big text, counts int[], flag boolean);
        ALTER TABLE kinds ALTER COLUMN big SET STORAGE EXTERNAL;
        INSERT INTO kinds (tags, doc, blob, money, at, note, big, counts, flag)
        SELECT ARRAY['a', 'b c', NULL, 'quote''d'], jsonb_build_object('k', g, 'nested', jsonb_build_array(1, 'two', NULL)),
               decode(md5(g::text), 'hex'), g * 1.25, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 hour',
               E'tab\\there\\nnew line \\\\ backslash ' || g, repeat(md5(g::text), 200), ARRAY[g, -g], g % 2 = 0
        FROM generate_series(1, 30) g;
        """

    /// One round of writes to the typed table: an insert (with NULLs), an update that leaves the
    /// TOASTed column alone, and a delete.
    static func typedChanges(round: Int) -> String {
        """
        INSERT INTO kinds (tags, doc, blob, money, at, note, big, counts, flag)
            VALUES (NULL, '{"round": \(round)}', NULL, NULL, now(), NULL, repeat('r\(round)', 3000), '{}', NULL);
        UPDATE kinds SET money = coalesce(money, 0) + 0.01, note = coalesce(note, '') || E'\\t\(round)\\n' WHERE id = \(round % 30 + 1);
        DELETE FROM kinds WHERE id = (SELECT min(id) FROM kinds WHERE id > 30 AND id % 3 = \(round % 3));
        """
    }

    func testRestoresToTwentyTimesUnderPgbenchLoadEqualTheSourceAtThoseTimes() throws {
        let database = try newDatabase("pitr_load", sql: "")
        try pgbench(database, ["-i", "-s", "1", "-q"])
        try PostgresClientBridge.execute(Self.typedTable, in: database)
        let (stream, log) = try startStream(database, extra: ["--replica-identity-full", "public.pgbench_history"])
        try waitUntil("the stream's linked base backup", log: log) { try linkedBase(database) != nil }

        var random = SeededGenerator(seed: 2026_12_04)
        var references: [(time: Int64, hashes: [String: String], sequences: [String: String])] = []
        for round in 0..<20 {
            try pgbench(database, ["-c", "4", "-j", "2", "-t", String(Int.random(in: 10...60, using: &random)), "-n"])
            try PostgresClientBridge.execute(Self.typedChanges(round: round), in: database)
            let now = try serverNow(database)
            references.append((now, try DatabaseFingerprint.contentHashes(try conninfo(database)), try DatabaseFingerprint.sequences(try conninfo(database))))
        }
        // Writes go on after the last reference time, as they do in production: a target after the
        // last archived commit is refused (nothing says no commit followed it), tested below.
        try pgbench(database, ["-c", "1", "-t", "5", "-n"])
        try waitUntilArchived(database, log: log)
        XCTAssertEqual(stopStream(stream, log: log), 0, logText(log))

        for (index, reference) in references.enumerated().shuffled(using: &random) {
            let target = scratchName("pitr_at")
            let result = try restore("latest", into: target, extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(reference.time)])
            XCTAssertEqual(result.status, 0, result.stderr)
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            let replay = try XCTUnwrap(report?["pointInTime"] as? [String: Any], result.stdout)
            XCTAssertGreaterThan(replay["transactions"] as? Int ?? 0, 0)
            let reached = try XCTUnwrap((replay["reachedCommitTime"] as? String).flatMap(CommitTime.parse))
            XCTAssertLessThanOrEqual(reached, reference.time)
            XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(target)), reference.hashes, "restore to round \(index)'s time")
            let sequence = try XCTUnwrap(PostgresClientBridge.scalar("SELECT last_value FROM kinds_id_seq", in: target))
            XCTAssertGreaterThanOrEqual(Int(sequence) ?? 0, Int(reference.sequences["public.kinds_id_seq"] ?? "") ?? .max)
            TestServices.dropDatabase(target)
        }

        let latest = scratchName("pitr_latest")
        let result = try restore("latest", into: latest, extra: ["--key-file", keyFile, "--to-latest"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(latest)), try DatabaseFingerprint.contentHashes(try conninfo(database)))

        // The archive checks out, and a target past its end is refused with what it covers.
        let verified = try Command.drkit(["verify", "--changes", "--repo", repo, "--key-file", keyFile])
        XCTAssertEqual(verified.status, 0, verified.stderr)
        XCTAssertTrue(verified.stdout.contains("OK"), verified.stdout)
        let future = try restore("latest", into: scratchName("pitr_future"), extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(references.last!.time + 3_600_000_000)])
        assertFailure(future, exitCode: 2, mentions: "past the end of the change archive")
        XCTAssertTrue(future.stderr.contains("--to-latest"), future.stderr)
    }

    /// A stream sealed to an age recipient alone: the host cannot reopen a lineage's key, so a restart
    /// starts a new lineage at the slot's position (with its own base); a restore with the identity
    /// replays across both to the latest commit.
    func testAStreamSealedToARecipientRestoresWithTheIdentityAcrossRestarts() throws {
        let database = try newDatabase("pitr_age", sql: "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'a' FROM generate_series(1, 100) g;")
        let identity = workDirectory.appendingPathComponent("identity.txt").path
        let made = try Command.drkit(["key", "generate", "--type", "age", "--out", identity])
        XCTAssertEqual(made.status, 0, made.stderr)
        let recipient = String(try XCTUnwrap(made.stdout.split(separator: "\n").first { $0.hasPrefix("recipient: ") }).dropFirst("recipient: ".count))
        let host = ["DRKIT_KEY": ""]
        for round in 0..<2 {
            let (stream, log) = try startStream(database, environment: host, keys: ["--recipient", recipient])
            try waitUntil("a linked base backup of round \(round)", log: log) {
                guard FileManager.default.fileExists(atPath: repo) else { return false }
                return try Repository.open(repo, create: false).backups().filter { $0.summary.database == database && $0.summary.streamPosition != nil }.count == round + 1
            }
            try PostgresClientBridge.execute("INSERT INTO t SELECT g, 'round \(round)' FROM generate_series(1000 * (\(round) + 1), 1000 * (\(round) + 1) + 50) g; UPDATE t SET v = 'changed' WHERE id = \(round + 1)", in: database)
            try waitUntilArchived(database, log: log)
            // On 17+ the slot is created for failover: a standby with sync_replication_slots keeps it.
            if Int(try XCTUnwrap(PostgresClientBridge.scalar("SHOW server_version_num", in: database))) ?? 0 >= 170000 {
                XCTAssertEqual(try PostgresClientBridge.scalar("SELECT failover::text FROM pg_replication_slots WHERE slot_name = '\(StreamSource.objectName(for: database))'", in: database), "true")
            }
            XCTAssertEqual(stopStream(stream, log: log), 0)
            if round == 1 { XCTAssertTrue(logText(log).contains("this host cannot reopen its key: a new lineage starts where it ends"), logText(log)) }
        }
        XCTAssertEqual(try archive.lineages(database: database).count, 2)
        let noKey = try restore("latest", into: scratchName("pitr_age_no"), extra: ["--to-latest"])
        XCTAssertEqual(noKey.status, 2, noKey.stderr)
        let restored = scratchName("pitr_age_r")
        let result = try restore("latest", into: restored, extra: ["--identity", identity, "--to-latest"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(restored)), try DatabaseFingerprint.contentHashes(try conninfo(database)))
    }

    /// DDL that writes no row (a DROP, an empty new table, an ALTER nobody has written through yet) is
    /// invisible to pgoutput: the stream sees it in the catalog, records when, and takes a new base.
    /// A restore before it has the old schema and rows, one after the new base the new schema, and one
    /// in between is refused naming the window (or, if the new base came first, equals the source then).
    func testDDLWithoutRowsIsSeenInTheCatalogAndNeverReplayedAcross() throws {
        let database = try newDatabase("pitr_ddl", sql: """
            CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, 'a' FROM generate_series(1, 50) g;
            CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 20);
            """)
        let (stream, log) = try startStream(database, extra: ["--no-schema-capture"])
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        func linkedBases() throws -> Int {
            try Repository.open(repo, create: false).backups().filter { $0.summary.database == database && $0.summary.streamPosition != nil }.count
        }
        let before = try serverNow(database)
        let schemaBefore = try DatabaseFingerprint.normalizedSchema(database: database)
        let rowsBefore = try DatabaseFingerprint.contentHashes(try conninfo(database))
        // A row after `before`, stored and confirmed: the stream looks at the catalog at every segment,
        // before confirming it, so its last look before the DDL below is after `before`.
        try PostgresClientBridge.execute("INSERT INTO a VALUES (100, 'before')", in: database)
        try waitUntilArchived(database, log: log)
        try PostgresClientBridge.execute("DROP TABLE b; CREATE TABLE c (id int PRIMARY KEY); ALTER TABLE a ADD COLUMN note text DEFAULT 'x'", in: database)
        let between = try serverNow(database)
        let schemaBetween = try DatabaseFingerprint.normalizedSchema(database: database)
        let rowsBetween = try DatabaseFingerprint.contentHashes(try conninfo(database))
        try waitUntil("a base backup after the schema change", log: log) { try linkedBases() == 2 }
        try PostgresClientBridge.execute("INSERT INTO a VALUES (200, 'after', 'n')", in: database)
        try waitUntilArchived(database, log: log)
        XCTAssertEqual(stopStream(stream, log: log), 0)
        XCTAssertTrue(logText(log).contains("dropped public.b") && logText(log).contains("created public.c") && logText(log).contains("altered public.a"), logText(log))

        let early = scratchName("pitr_ddl_before")
        let restoredBefore = try restore("latest", into: early, extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(before)])
        XCTAssertEqual(restoredBefore.status, 0, restoredBefore.stderr)
        XCTAssertEqual(try DatabaseFingerprint.normalizedSchema(database: early), schemaBefore)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(early)), rowsBefore)

        let middle = scratchName("pitr_ddl_between")
        let inWindow = try restore("latest", into: middle, extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(between)])
        if inWindow.status == 0 {
            // The new base's snapshot fell before `between`: it restores the schema of that moment.
            XCTAssertEqual(try DatabaseFingerprint.normalizedSchema(database: middle), schemaBetween)
            XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(middle)), rowsBetween)
        } else {
            assertFailure(inWindow, exitCode: 2, mentions: "the schema of \(database) changed between")
        }

        let latest = scratchName("pitr_ddl_latest")
        let restoredLatest = try restore("latest", into: latest, extra: ["--key-file", keyFile, "--to-latest"])
        XCTAssertEqual(restoredLatest.status, 0, restoredLatest.stderr)
        try assertSameDatabase(database, latest)
    }

    /// A week of migrations in miniature, with pgbench bursts between them, run the way migration tools
    /// run them (one statement at a time, one query string of two DDL statements): add a column with a
    /// default, backfill it, rename a column, change a type, create and fill a table (and another in one
    /// transaction), a new schema with a
    /// view, a function and an index built concurrently, a partitioned table with rows moving between
    /// partitions, a partition attached later, a column filled from a volatile default, drop a table.
    /// With drkit's event triggers every DDL command is in the stream: restores to a time before and just
    /// after each step equal the source then (schema and rows), replayed from the one base; only the
    /// volatile default (its values cannot be computed again) is refused, naming the window, or restored
    /// from the base the stream took after it.
    func testAWeekOfMigrationsReplaysEveryCapturedStep() throws { try weekOfMigrations(captured: true) }

    /// The same week when the stream's role may not create event triggers (not a superuser: a managed
    /// service): the stream says so and falls back; every restore equals the source then or is refused
    /// naming the window, never a wrong schema or wrong rows.
    func testAWeekOfMigrationsWithoutEventTriggerRightsRestoresOrRefusesTheWindow() throws { try weekOfMigrations(captured: false) }

    private func weekOfMigrations(captured: Bool) throws {
        let database = try newDatabase(captured ? "pitr_week" : "pitr_week_norights", sql: """
            CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2) NOT NULL, note text);
            INSERT INTO orders SELECT g, g * 1.5, 'order ' || g FROM generate_series(1, 500) g;
            CREATE TABLE invoices (id int PRIMARY KEY, amount int);
            """)
        try pgbench(database, ["-i", "-s", "1", "-q"])
        var source = try conninfo(database)
        if !captured {
            // A role with REPLICATION and read rights but no superuser; the publication made for it.
            let role = "drkit_streamer_\(UInt32.random(in: 0...UInt32.max))"
            let password = UUID().uuidString
            let admin = try Connection(conninfo: try TestServices.postgres())
            try admin.execute("CREATE ROLE \(role) LOGIN REPLICATION PASSWORD '\(password)'; GRANT pg_read_all_data TO \(role)")
            addTeardownBlock {
                for _ in 0..<100 {
                    _ = try? admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [role])
                    if (try? admin.query("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", [role]).scalar) == "0" { break }
                    usleep(100_000)
                }
                _ = try? admin.execute("DROP ROLE IF EXISTS \(role)")
            }
            try PostgresClientBridge.execute("""
                CREATE PUBLICATION \(StreamSource.objectName(for: database)) FOR ALL TABLES WITH (publish_via_partition_root = true);
                ALTER TABLE pgbench_history REPLICA IDENTITY FULL
                """, in: database)
            let options = try ConnectionOptions(source)
            source = source.replacingOccurrences(of: "user=\(options["user"] ?? "") password=\(options["password"] ?? "")", with: "user=\(role) password=\(password)")
            XCTAssertTrue(source.contains("user=\(role)"))
        }
        let (stream, log) = try startStream(database, source: source, extra: captured ? ["--replica-identity-full", "public.pgbench_history"] : [])
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        XCTAssertTrue(logText(log).contains(captured ? "created event triggers drkit_capture_ddl" : "needs a superuser"), logText(log))
        struct Step {
            var name: String
            var statements: [String]
            var ddl = true
            /// Replayed from the stream when captured (else the stream takes a new base after it).
            var replayable = true
        }
        let steps = [
            Step(name: "add a column with a default", statements: ["ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new'"]),
            Step(name: "backfill it", statements: ["UPDATE orders SET status = 'paid' WHERE id % 3 = 0"], ddl: false),
            Step(name: "rename a column", statements: ["ALTER TABLE orders RENAME COLUMN note TO comment"]),
            Step(name: "change a type", statements: ["ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,3)"]),
            Step(name: "create and fill a table", statements: [
                "CREATE TABLE refunds (id int PRIMARY KEY, order_id int, amount numeric); CREATE INDEX refunds_order ON refunds (order_id)",
                "INSERT INTO refunds SELECT g, g, g FROM generate_series(1, 40) g",
            ]),
            Step(name: "create and fill a table in one transaction", statements: [
                "BEGIN", "CREATE TABLE ledger (id int PRIMARY KEY, entry text)", "INSERT INTO ledger SELECT g, 'l' || g FROM generate_series(1, 25) g", "COMMIT",
            ]),
            Step(name: "a schema, a view, a function, an index", statements: [
                "CREATE SCHEMA reporting",
                "CREATE VIEW reporting.paid AS SELECT id, total FROM public.orders WHERE status = 'paid'",
                "CREATE FUNCTION reporting.paid_total() RETURNS numeric LANGUAGE sql AS $$ SELECT sum(total) FROM public.orders WHERE status = 'paid' $$",
                "CREATE INDEX CONCURRENTLY orders_status ON orders (status)",
            ]),
            Step(name: "partitions and moving rows", statements: [
                "CREATE TABLE events (id int, region text, payload text, PRIMARY KEY (id, region)) PARTITION BY LIST (region)",
                "CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu')",
                "CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us')",
                "INSERT INTO events SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'e' || g FROM generate_series(1, 60) g",
                "UPDATE events SET region = 'us' WHERE id % 4 = 0",
            ]),
            Step(name: "a partition attached later", statements: [
                "CREATE TABLE events_apac (id int NOT NULL, region text NOT NULL, payload text)",
                "INSERT INTO events_apac VALUES (1000, 'apac', 'early')",
                "ALTER TABLE events ATTACH PARTITION events_apac FOR VALUES IN ('apac')",
                "INSERT INTO events SELECT g, 'apac', 'a' || g FROM generate_series(100, 110) g",
                "UPDATE events SET region = 'apac' WHERE id = 2",
            ]),
            Step(name: "a column filled from a volatile default", statements: [
                "ALTER TABLE refunds ADD COLUMN recorded_at timestamptz DEFAULT clock_timestamp()",
            ], replayable: false),
            Step(name: "drop a table", statements: ["DROP TABLE invoices"]),
        ]
        var references: [(label: String, time: Int64, schema: String, rows: [String: String], mustRestore: Bool)] = []
        func capture(_ label: String, mustRestore: Bool) throws {
            let time = try serverNow(database)
            references.append((label, time, try DatabaseFingerprint.normalizedSchema(database: database),
                               try DatabaseFingerprint.contentHashes(try conninfo(database)), mustRestore))
        }
        for (index, step) in steps.enumerated() {
            try pgbench(database, ["-c", "2", "-j", "2", "-t", "20", "-n"])
            // Before the step: any base the previous step needed is in place, so this restores.
            try capture("before step \(index + 1) (\(step.name))", mustRestore: true)
            // Stored after the reference: the stream's catalog look is later than it (see the DDL test).
            try PostgresClientBridge.execute("INSERT INTO orders (id, total) VALUES (\(1000 + index), 1)", in: database)
            try waitUntilArchived(database, log: log)
            // One session, as a migration tool's: BEGIN ... COMMIT spans statements.
            let session = try Connection(conninfo: try conninfo(database))
            for statement in step.statements { try session.execute(statement) }
            let needsBase = step.ddl && !(captured && step.replayable)
            try capture("just after step \(index + 1) (\(step.name))", mustRestore: !needsBase)
            if needsBase {
                // A segment stored after the step: the stream has looked at the catalog since. Then a base
                // whose snapshot follows the step and every window the looks recorded (one requested
                // earlier may still be running, and a base taken inside a window counts as before it).
                try PostgresClientBridge.execute("INSERT INTO orders (id, total) VALUES (\(2000 + index), 2)", in: database)
                try waitUntilArchived(database, log: log)
                let archive = try self.archive
                let windows = try archive.lineages(database: database).flatMap { try archive.catalogChanges(of: $0.lineage) }
                let after = max(references.last!.time, windows.map(\.observedBy).max() ?? 0)
                try waitUntil("a base backup after step \(index + 1)", log: log) {
                    try Repository.open(repo, create: false).backups().contains {
                        $0.summary.database == database && $0.summary.streamPosition != nil && CommitTime.micros($0.summary.snapshotTime) > after
                    }
                }
            }
        }
        try pgbench(database, ["-c", "2", "-j", "2", "-t", "20", "-n"])
        try capture("after the week", mustRestore: true)
        // Writes go on after the last reference: a target after the archive's last commit is refused.
        try pgbench(database, ["-c", "1", "-t", "5", "-n"])
        try waitUntilArchived(database, log: log)
        XCTAssertEqual(stopStream(stream, log: log), 0)
        if captured {
            XCTAssertTrue(logText(log).contains("cannot be replayed (ALTER TABLE: it filled a new column from a volatile default"), logText(log))
        }

        var replayedSchemaChanges = false
        for reference in references {
            let target = scratchName("pitr_week_r")
            let result = try restore("latest", into: target, extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(reference.time)])
            if result.status == 0 {
                XCTAssertEqual(try DatabaseFingerprint.normalizedSchema(database: target), reference.schema, "schema at \(reference.label)")
                XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(target)), reference.rows, "rows at \(reference.label)")
                replayedSchemaChanges = replayedSchemaChanges || result.stdout.range(of: "\"schemaChanges\" *: *[1-9]", options: .regularExpression) != nil
            } else {
                XCTAssertFalse(reference.mustRestore, "\(reference.label) was refused: \(result.stderr)")
                XCTAssertEqual(result.status, 2, "\(reference.label): \(result.stderr)")
                XCTAssertTrue(result.stderr.contains("changed between") || result.stderr.contains("cannot be restored to")
                              || result.stderr.contains("which base backup"), "\(reference.label): the refusal names the window: \(result.stderr)")
            }
            TestServices.dropDatabase(target)
        }
        // Captured: restores went through DDL replayed from the stream, not only through new bases.
        XCTAssertEqual(replayedSchemaChanges, captured)
    }

    /// The runbook's "just before DROP TABLE orders" with the capture on: a restore of `orders` alone
    /// skips DDL of other tables, is refused past DDL of `orders` itself (a partial restore runs none),
    /// and a whole restore replays all of it; the DROP after the target is never reached.
    func testOneTableRestoreSkipsOtherTablesDDLAndRefusesItsOwn() throws {
        let database = try newDatabase("pitr_drop", sql: """
            CREATE TABLE orders (id int PRIMARY KEY, total int); CREATE TABLE other (id int PRIMARY KEY);
            INSERT INTO orders VALUES (1, 10); INSERT INTO other VALUES (1);
            """)
        let (stream, log) = try startStream(database)
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        try PostgresClientBridge.execute("ALTER TABLE other ADD COLUMN x int", in: database)
        try PostgresClientBridge.execute("INSERT INTO other VALUES (2, 2); INSERT INTO orders VALUES (2, 20)", in: database)
        let beforeOwnDDL = try serverNow(database)
        try PostgresClientBridge.execute("ALTER TABLE orders ADD COLUMN note text", in: database)
        try PostgresClientBridge.execute("INSERT INTO orders VALUES (3, 30, 'n')", in: database)
        let beforeDrop = try serverNow(database)
        let whole = try DatabaseFingerprint.contentHashes(try conninfo(database))
        let schema = try DatabaseFingerprint.normalizedSchema(database: database)
        try PostgresClientBridge.execute("DROP TABLE orders", in: database)
        try waitUntilArchived(database, log: log)
        XCTAssertEqual(stopStream(stream, log: log), 0)

        let recovered = try newDatabase("pitr_drop_one", sql: "CREATE TABLE keep (id int)")
        let one = try restore("latest", into: recovered, extra: ["--key-file", keyFile, "--table", "public.orders", "--into-schema", "recovered",
                                                                 "--to-time", CommitTime.iso8601(beforeOwnDDL)])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT string_agg(id || '=' || total, ',' ORDER BY id) FROM recovered.orders", in: recovered), "1=10,2=20")
        let refused = try restore("latest", into: scratchName("pitr_drop_two"), extra: ["--key-file", keyFile, "--table", "public.orders",
                                                                                        "--to-time", CommitTime.iso8601(beforeDrop)])
        assertFailure(refused, exitCode: 2, mentions: "concerns orders, and a restore of chosen tables does not run DDL")

        let all = scratchName("pitr_drop_all")
        let restored = try restore("latest", into: all, extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(beforeDrop)])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(all)), whole)
        XCTAssertEqual(try DatabaseFingerprint.normalizedSchema(database: all), schema)
        XCTAssertTrue(restored.stdout.range(of: "\"schemaChanges\" *: *2", options: .regularExpression) != nil, restored.stdout)
    }

    func testKilledStreamLosesAndRepeatsNothing() throws {
        let database = try newDatabase("pitr_kill", sql: "")
        try pgbench(database, ["-i", "-s", "1", "-q"])
        // Rate-limited so that ten restarts fit in the load's run on two cores.
        let (load, output) = try startPgbench(database, ["-c", "2", "-j", "2", "-R", "300", "-T", "30", "-n"])
        defer { if load.isRunning { load.terminate() } }
        var random = SeededGenerator(seed: 9)
        for trial in 0..<10 {
            let (stream, log) = try startStream(database, extra: ["--replica-identity-full", "public.pgbench_history"])
            // Each trial kills at a different point: before, during or after a segment, or during the base backup.
            usleep(UInt32.random(in: 200_000...1_800_000, using: &random))
            XCTAssertTrue(stream.isRunning, "trial \(trial): \(logText(log))")
            kill(stream.processIdentifier, SIGKILL)
            stream.waitUntilExit()
        }
        let pgbenchOutput = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        load.waitUntilExit()
        XCTAssertEqual(load.terminationStatus, 0)
        assertNoFailedTransactions(output: pgbenchOutput)

        let (stream, log) = try startStream(database, extra: ["--replica-identity-full", "public.pgbench_history"])
        try waitUntilArchived(database, log: log)
        try waitUntil("a linked base backup", log: log) { try linkedBase(database) != nil }
        XCTAssertEqual(stopStream(stream, log: log), 0)
        let restored = scratchName("pitr_kill_r")
        let result = try restore("latest", into: restored, extra: ["--key-file", keyFile, "--to-latest"])
        XCTAssertEqual(result.status, 0, result.stderr)
        // pgbench_history has no key: a transaction replayed twice would add its row twice.
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(restored)), try DatabaseFingerprint.contentHashes(try conninfo(database)))
    }

    func testRemovedTruncatedOrSwappedSegmentIsRefusedByName() throws {
        let database = try newDatabase("pitr_chain", sql: "CREATE TABLE t (id int PRIMARY KEY, v text)")
        let (stream, log) = try startStream(database)
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        for round in 1...4 {
            try PostgresClientBridge.execute("INSERT INTO t VALUES (\(round), 'round \(round)')", in: database)
            try waitUntil("segment \(round)", log: log) { try segmentCount(database) >= round }
        }
        XCTAssertEqual(stopStream(stream, log: log), 0)
        let lineage = try XCTUnwrap(try archive.lineages(database: database).last)
        let segments = try archive.segments(of: lineage.lineage)
        XCTAssertEqual(segments.count, 4)
        let target = CommitTime.iso8601(segments[3].name.lastCommit)
        let root = URL(fileURLWithPath: repo)
        let pristine = workDirectory.appendingPathComponent("pristine")
        try FileManager.default.copyItem(at: root, to: pristine)

        func damaged(_ what: String, _ damage: (URL, URL) throws -> Void) throws {
            try? FileManager.default.removeItem(at: root)
            try FileManager.default.copyItem(at: pristine, to: root)
            try damage(root.appendingPathComponent(segments[1].key), root.appendingPathComponent(segments[2].key))
            let segmentName = String(segments[1].key.split(separator: "/").last!)
            let verify = try Command.drkit(["verify", "--changes", "--repo", repo, "--key-file", keyFile])
            assertFailure(verify, exitCode: 5, mentions: "change segment")
            XCTAssertTrue(verify.stderr.contains(segmentName) || verify.stderr.contains(String(segments[2].key.split(separator: "/").last!)), "\(what): \(verify.stderr)")
            let restored = try restore("latest", into: scratchName("pitr_chain_r"), extra: ["--key-file", keyFile, "--to-time", target])
            XCTAssertEqual(restored.status, 5, "\(what): \(restored.stderr)")
            XCTAssertTrue(restored.stderr.contains("change segment"), "\(what): \(restored.stderr)")
        }
        try damaged("removed") { second, _ in try FileManager.default.removeItem(at: second) }
        try damaged("truncated") { second, _ in
            let bytes = try Data(contentsOf: second)
            try FileManager.default.removeItem(at: second)
            try bytes.prefix(bytes.count - 20).write(to: second)
        }
        try damaged("swapped") { second, third in
            let (a, b) = (try Data(contentsOf: second), try Data(contentsOf: third))
            try FileManager.default.removeItem(at: second)
            try FileManager.default.removeItem(at: third)
            try b.write(to: second)
            try a.write(to: third)
        }
    }

    func testTableWithoutKeyIsRefusedBeforeAnythingIsCreated() throws {
        let database = try newDatabase("pitr_nokey", sql: """
            CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE loose (v text); INSERT INTO loose VALUES ('a');
            CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY); SELECT lo_from_bytea(0, 'blob');
            """)
        streamedDatabases.append(database)
        let refused = try Command.drkit(["stream", "--db", try conninfo(database), "--repo", repo, "--key-file", keyFile])
        assertFailure(refused, exitCode: 2, mentions: "public.loose")
        XCTAssertTrue(refused.stderr.contains("--replica-identity-full"), refused.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()", in: database), "0")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_publication", in: database), "0")
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo + "/stream"))
        // Writes on the table keep working; with the flag the table is published with its whole old row.
        let (stream, log) = try startStream(database, extra: ["--replica-identity-full", "loose"])
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        try PostgresClientBridge.execute("UPDATE loose SET v = 'b'; INSERT INTO loose VALUES ('c'); DELETE FROM loose WHERE v = 'c'", in: database)
        try waitUntilArchived(database, log: log)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT relreplident::text FROM pg_class WHERE relname = 'loose'", in: database), "f")
        // What logical replication cannot carry is said up front.
        XCTAssertTrue(logText(log).contains("1 large object(s)") && logText(log).contains("unlogged tables are not streamed (public.scratch)"), logText(log))
        XCTAssertEqual(stopStream(stream, log: log), 0)
        let restored = scratchName("pitr_nokey_r")
        let result = try restore("latest", into: restored, extra: ["--key-file", keyFile, "--to-latest"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT string_agg(v, ',') FROM loose", in: restored), "b")
        // `stream drop` removes the slot and the publication.
        let dropped = try Command.drkit(["stream", "drop", "--db", try conninfo(database)])
        XCTAssertEqual(dropped.status, 0, dropped.stderr)
        XCTAssertTrue(dropped.stdout.contains("replication slot"), dropped.stdout)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()", in: database), "0")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_publication", in: database), "0")
    }

    func testWalLevelOtherThanLogicalIsRefusedWithTheSettingToChange() throws {
        // The second test cluster runs wal_level = replica.
        let result = try Command.drkit(["stream", "--db", try TestServices.secondCluster(), "--repo", repo, "--key-file", keyFile])
        assertFailure(result, exitCode: 2, mentions: "wal_level = logical")
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo + "/stream"))
        let admin = try Connection(conninfo: try TestServices.secondCluster())
        XCTAssertEqual(try admin.query("SELECT count(*) FROM pg_publication").scalar, "0")
    }

    /// A schema change (or a new table) while streaming: the stream takes a new base after it, restores to
    /// later times start there, a time between the change and that base is refused naming the window,
    /// and a time before the change replays onto the old definition.
    func testSchemaChangeWhileStreamingTakesANewBaseAndRefusesOnlyTheWindow() throws {
        let database = try newDatabase("pitr_ddl", sql: "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')")
        let (stream, log) = try startStream(database, extra: ["--no-schema-capture"])
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        func linkedBases() throws -> Int {
            try Repository.open(repo, create: false).backups().filter { $0.summary.database == database && $0.summary.streamPosition != nil }.count
        }
        let beforeChange = try serverNow(database)
        // Stored and confirmed after `beforeChange`: the stream's catalog look at that segment is too, so
        // `beforeChange` is outside any window the catalog could record for the change below.
        try PostgresClientBridge.execute("INSERT INTO t VALUES (2, 'two')", in: database)
        try waitUntilArchived(database, log: log)
        try PostgresClientBridge.execute("ALTER TABLE t ADD COLUMN w int; INSERT INTO t VALUES (3, 'three', 3)", in: database)
        try waitUntil("a base backup after the change", log: log) { try linkedBases() == 2 }
        try PostgresClientBridge.execute("INSERT INTO t VALUES (4, 'four', 4); CREATE TABLE fresh (id int PRIMARY KEY); INSERT INTO fresh VALUES (1)", in: database)
        try waitUntil("a base backup after the new table", log: log) { try linkedBases() == 3 }
        try PostgresClientBridge.execute("INSERT INTO fresh VALUES (2); UPDATE t SET w = 2 WHERE id = 2", in: database)
        try waitUntilArchived(database, log: log)
        XCTAssertEqual(stopStream(stream, log: log), 0)
        let text = logText(log)
        XCTAssertTrue(text.contains("definition of public.t changed") && text.contains("public.fresh is new"), text)

        // The commit of the change, as the stream logged it: inside the window, before the next base.
        let marker = "the definition of public.t changed (commit at "
        let changedAt = try XCTUnwrap(text.components(separatedBy: marker).dropFirst().first?.prefix { $0 != ")" }.description)
        let inWindow = try restore("latest", into: scratchName("pitr_ddl_window"), extra: ["--key-file", keyFile, "--to-time", changedAt])
        // Refused at the change's commit (pgoutput described it), or, if the catalog look came first,
        // for the window around it: either way named, never replayed across.
        XCTAssertEqual(inWindow.status, 2, inWindow.stderr)
        XCTAssertTrue((inWindow.stderr.contains("public.t") && inWindow.stderr.contains("at or after") && inWindow.stderr.contains("the times in between cannot be restored to"))
                      || inWindow.stderr.contains("the schema of \(database) changed between"), inWindow.stderr)

        let latest = scratchName("pitr_ddl_latest")
        let result = try restore("latest", into: latest, extra: ["--key-file", keyFile, "--to-latest"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(latest)), try DatabaseFingerprint.contentHashes(try conninfo(database)))
        let before = scratchName("pitr_ddl_before")
        let old = try restore("latest", into: before, extra: ["--key-file", keyFile, "--to-time", CommitTime.iso8601(beforeChange)])
        XCTAssertEqual(old.status, 0, old.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT string_agg(v, ',' ORDER BY id) FROM t", in: before), "one")
    }

    /// A drill scenario with `to_time` restores to that time; its RPO counts from the newest archived
    /// commit, not from the base backup's snapshot.
    func testDrillRestoresToATimeAndCountsItsRPOFromTheArchive() throws {
        let database = try newDatabase("pitr_drill", sql: "CREATE TABLE t (id int PRIMARY KEY)")
        let (stream, log) = try startStream(database)
        try waitUntil("the linked base backup", log: log) { try linkedBase(database) != nil }
        let base = try XCTUnwrap(try Repository.open(repo, create: false).backups().first { $0.summary.database == database })
        try PostgresClientBridge.execute("INSERT INTO t VALUES (1)", in: database)
        let target = try serverNow(database)
        try waitUntil("two seconds after the base's snapshot") { try serverNow(database) > CommitTime.micros(base.summary.snapshotTime) + 2_000_000 }
        try PostgresClientBridge.execute("INSERT INTO t VALUES (2)", in: database)
        try waitUntilArchived(database, log: log)
        let lastCommit = try XCTUnwrap(try lastArchivedCommit(database))
        let evidence = workDirectory.appendingPathComponent("evidence").path
        let file = workDirectory.appendingPathComponent("pitr-drill.yaml").path
        try """
            name: pitr-drill
            source: \(try conninfo(database))
            repo: \(repo)
            backup: latest
            key_file: \(keyFile)
            to_time: "\(CommitTime.iso8601(target))"
            smoke:
              - name: the row before the target only
                sql: SELECT string_agg(id::text, ',') FROM t
                expect: "1"
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try Command.drkit(["drill", file, "--evidence-dir", evidence, "--audit-file", workDirectory.appendingPathComponent("audit.jsonl").path])
        let finished = Date()
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: evidence + "/evidence.json"))) as? [String: Any])
        let rpo = try XCTUnwrap(record["rpoSeconds"] as? Double, "\(record)")
        XCTAssertGreaterThanOrEqual(rpo, 0)
        XCTAssertLessThanOrEqual(rpo, finished.timeIntervalSince(CommitTime.date(lastCommit)) + 0.001, "RPO counts from the newest archived commit")
        XCTAssertEqual(stopStream(stream, log: log), 0)
    }
}
