import XCTest
import Foundation
import Archive
import Common
import TestSupport
@testable import DRKit

/// Small tables go into shared packs (format 4): a few objects instead of one per table, restored
/// exactly, checked slice by slice, and a damaged pack is named and refused.
final class PackTests: DRKitTestCase {
    /// 600 small tables (some empty, awkward names and text), each with a key and a foreign key, and one
    /// table large enough to keep objects of its own.
    private func manySmallTables() throws -> String {
        try newDatabase("drkit_pack", sql: """
            CREATE SCHEMA app;
            CREATE TABLE app.parent (id int PRIMARY KEY);
            INSERT INTO app.parent SELECT generate_series(1, 10);
            DO $$ BEGIN
              FOR i IN 1..600 LOOP
                EXECUTE format('CREATE TABLE app.t%s (id int PRIMARY KEY, parent int REFERENCES app.parent, v text)', i);
                EXECUTE format('INSERT INTO app.t%s SELECT g, 1 + g %% 10, CASE WHEN g %% 5 = 0 THEN NULL ELSE E''line\\nwith\\ttab '' || g END FROM generate_series(1, %s) g', i, i % 7 * 3);
              END LOOP;
            END $$;
            CREATE TABLE app."Mixed Case \"\"quoted\"\"\" (id int PRIMARY KEY, note text);
            INSERT INTO app."Mixed Case \"\"quoted\"\"\" VALUES (1, 'é'), (2, E'back\\\\slash');
            CREATE TABLE app.big (id int PRIMARY KEY, v text);
            INSERT INTO app.big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;
            ANALYZE;
            """)
    }

    private func opened(_ id: String) throws -> (BackupManifest, [String: Any]) {
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(repo)/\(id)/manifest.json"))) as? [String: Any]
        return (try openManifest(id), raw ?? [:])
    }

    func testSmallTablesArePackedVerifiedAndRestoredExactly() throws {
        let source = try manySmallTables()
        let id = try backup(source, extra: ["--jobs", "2", "--split-size", "64"])
        let (manifest, raw) = try opened(id)
        let packs = try XCTUnwrap(manifest.packs)
        XCTAssertEqual(packs.count, 3, "602 small tables, at most \(BackupPlanner.tablesPerPack) per pack")
        XCTAssertEqual(packs.flatMap(\.slices).count, 602)
        XCTAssertTrue(packs.allSatisfy { $0.object.name.hasPrefix("data/pack-") && $0.slices.count <= BackupPlanner.tablesPerPack })
        let big = try XCTUnwrap(manifest.tables.first { $0.name == "big" })
        XCTAssertFalse(big.objects.isEmpty, "a table over --pack-below keeps objects of its own")
        let packed = Set(packs.flatMap(\.slices).map(\.name))
        XCTAssertTrue(manifest.tables.filter { packed.contains($0.name) }.allSatisfy(\.objects.isEmpty))
        for table in manifest.tables {
            let actual = try PostgresClientBridge.scalar("SELECT count(*) FROM ONLY \(PostgresClientBridge.qualified(table))", in: source)
            XCTAssertEqual(String(table.rows), actual, "exact row count of \(table.schema).\(table.name)")
        }
        XCTAssertEqual(raw["formatVersion"] as? Int, 4, "a drkit that does not know packs must refuse this backup")
        XCTAssertLessThan(try objectPaths(id).count, 10, "a few objects, not one per table")

        let verify = try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile, "--json"])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any]
        XCTAssertEqual((report?["rowsChecked"] as? NSNumber)?.int64Value, manifest.tables.reduce(0) { $0 + $1.rows })

        let target = scratchName("drkit_pack_rt")
        let restored = try restore(id, into: target, extra: ["--key-file", keyFile, "--jobs", "2"])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        try assertSameDatabase(source, target)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'app'::regnamespace", in: target), "600")
    }

    func testADamagedPackIsNamedByVerifyAndRefusedByRestore() throws {
        let source = try manySmallTables()
        let id = try backup(source, extra: ["--split-size", "64"])
        let pack = try XCTUnwrap(try objectPaths(id).first { $0.hasSuffix("pack-00001.copy.zst.enc") })
        // Near the end: the tables before it in the pack are already loaded when the damage is read.
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: pack)[.size] as? NSNumber).uint64Value
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: pack)
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: pack))
        handle.seek(toFileOffset: size - 40)
        let byte = handle.readData(ofLength: 1)
        handle.seek(toFileOffset: size - 40)
        handle.write(Data([byte[0] ^ 0x5A]))
        try handle.close()

        let verify = try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile])
        XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
        XCTAssertTrue((verify.stdout + verify.stderr).contains("pack-00001"), verify.stdout + verify.stderr)
        let target = scratchName("drkit_pack_refused")
        assertFailure(try restore(id, into: target, extra: ["--key-file", keyFile, "--jobs", "2"]), exitCode: 5, mentions: "pack-00001")
        XCTAssertFalse(try TestServices.databaseExists(target), "a failed restore drops what it created")
    }

    /// Small tables' foreign keys run 100 to a transaction: a row that breaks one (written with triggers
    /// off) still fails the restore, with the constraint named, and nothing is left.
    func testAForeignKeyThatFailsInABatchFailsTheRestore() throws {
        let source = try newDatabase("drkit_pack_fk", sql: """
            CREATE TABLE parent (id int PRIMARY KEY);
            INSERT INTO parent SELECT generate_series(1, 10);
            DO $$ BEGIN
              FOR i IN 1..40 LOOP
                EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, parent int REFERENCES parent, v text)', i);
                EXECUTE format('CREATE INDEX ON t%s (v)', i);
                EXECUTE format('INSERT INTO t%s SELECT g, 1 + g %% 10, md5(g::text) FROM generate_series(1, 20) g', i);
              END LOOP;
            END $$;
            SET session_replication_role = replica;
            INSERT INTO t27 VALUES (1000, 99, 'no such parent');
            """)
        let id = try backup(source)
        let target = scratchName("drkit_pack_fk_rt")
        assertFailure(try restore(id, into: target, extra: ["--key-file", keyFile, "--jobs", "2"]), exitCode: 3, mentions: "t27_parent_fkey")
        XCTAssertFalse(try TestServices.databaseExists(target), "a failed restore drops what it created")
    }

    /// Thousands of tables fit in the server's lock table (64 × 100 slots here, the default): backup
    /// workers release what they copied after each object and the two schema dumps take turns, and
    /// restore commits pre-data every 100 entries. Holding one transaction over 4,500 tables failed on
    /// both sides with "out of shared memory", where pg_dump -j2 and pg_restore succeed.
    func testThousandsOfTablesFitInTheServersLockTable() throws {
        let source = try newDatabase("drkit_locks", sql: "")
        for (first, last) in [(1, 1500), (1501, 3000), (3001, 4500)] {
            try PostgresClientBridge.execute("""
                DO $$ BEGIN FOR i IN \(first)..\(last) LOOP EXECUTE format('CREATE TABLE t%s (id int, v text)', i); END LOOP; END $$;
                """, in: source)
        }
        try PostgresClientBridge.execute("INSERT INTO t4500 VALUES (1, 'last')", in: source)
        let id = try backup(source, extra: ["--jobs", "2"])
        for jobs in ["2", "1"] {
            let target = scratchName("drkit_locks_rt")
            let restored = try restore(id, into: target, extra: ["--key-file", keyFile, "--jobs", jobs])
            XCTAssertEqual(restored.status, 0, restored.stderr)
            XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", in: target), "4500")
            XCTAssertEqual(try PostgresClientBridge.scalar("SELECT v FROM t4500", in: target), "last")
        }
    }

    func testAPartialRestoreLoadsOnlyTheChosenSliceOfAPack() throws {
        let source = try manySmallTables()
        let id = try backup(source, extra: ["--split-size", "64"])
        let target = scratchName("drkit_pack_partial")
        XCTAssertEqual(try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try conninfo(target), "--table", "app.t13"]).status, 0)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'", in: target), "1")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT string_agg(id || ':' || coalesce(v, 'NULL'), ',' ORDER BY id) FROM app.t13", in: target),
                       try PostgresClientBridge.scalar("SELECT string_agg(id || ':' || coalesce(v, 'NULL'), ',' ORDER BY id) FROM app.t13", in: source))
    }

    func testPackBelowZeroKeepsEveryTableInObjectsOfItsOwn() throws {
        let source = try newDatabase("drkit_nopack", sql: "CREATE TABLE a (id int); INSERT INTO a VALUES (1); CREATE TABLE b (id int); INSERT INTO b VALUES (2);")
        let id = try backup(source, extra: ["--pack-below", "0"])
        let (manifest, raw) = try opened(id)
        XCTAssertNil(manifest.packs)
        XCTAssertEqual(manifest.tables.map(\.objects.count), [1, 1])
        XCTAssertEqual(raw["formatVersion"] as? Int, 2, "without packs (or large objects) the backup stays readable by older drkit")
        let packed = try backup(source)
        XCTAssertEqual(try opened(packed).0.packs?.first?.slices.map(\.name), ["a", "b"])
        let bad = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--pack-below", "-1"])
        XCTAssertEqual(bad.status, 2, bad.stderr)
    }
}
