import XCTest
import Foundation
import Archive
import Common
import TestSupport
@testable import DRKit

/// Backup → restore on real PostgreSQL reproduces schema, content and sequences exactly.
final class RoundTripTests: DRKitTestCase {
    func testEncryptedParallelRoundTripIsExact() throws {
        let source = try SharedFixture.database()
        let backupId = try backup(source, extra: ["--jobs", "2"])

        let manifest = try openManifest(backupId)
        let big = try XCTUnwrap(manifest.tables.first { $0.name == "big_table" })
        XCTAssertGreaterThan(big.objects.count, 1, "a table larger than the split size is split")
        XCTAssertEqual(big.rows, Int64(Fixture.bigTableRows))
        for table in manifest.tables {
            let actual = try PostgresClientBridge.scalar("SELECT count(*) FROM ONLY \(PostgresClientBridge.qualified(table))", in: source)
            XCTAssertEqual(String(table.rows), actual, "exact row count of \(table.schema).\(table.name)")
        }
        XCTAssertTrue(manifest.tables.contains { $0.kind == "partition" })
        XCTAssertTrue(manifest.tables.contains { $0.kind == "unlogged table" })
        XCTAssertEqual(Set(manifest.materializedViews.map(\.populated)), [true, false])
        XCTAssertEqual(manifest.sequences.first { $0.name == "invoice_numbers" }?.lastValue, "424242")

        let target = scratchName("drkit_rt")
        let result = try restore("latest", into: target, extra: ["--key-file", keyFile, "--jobs", "2"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(report?["backupId"] as? String, backupId)
        XCTAssertNotNil(report?["durationSeconds"] as? Double)
        try assertSameDatabase(source, target)
        // Generated and identity columns still work after restore.
        XCTAssertEqual(try PostgresClientBridge.scalar("""
            INSERT INTO "Sales"."Customers" ("Full Name", quantity) VALUES ('new', 21) RETURNING doubled
            """, in: target), "42")
    }

    /// The backup dumps both DDL sections in one pg_dump run and splits it by the table of contents: the
    /// scripts must hold what pg_dump's own `--section` runs print, entry for entry.
    func testSchemaSectionsSplitFromOneDumpMatchPgDumpsOwnSectionRuns() throws {
        let source = try SharedFixture.database()
        let id = try backup(source)
        let repository = try Repository.open(repo, create: false)
        let file = try repository.resolve(id)
        let key = try KeyOptions(keyFile: keyFile).dataKey(for: file, in: repository)
        let manifest = try file.open(dataKey: key)
        let objects = try BackupObjects(repository: repository, backupId: id, dataKey: key, manifest: manifest)
        let pgDump = try PgDump.locate(serverMajor: manifest.source.serverVersionNum / 10000)
        // Comment lines differ (the trailer of a section run); statements and entry headers must not.
        func statements(_ script: DDLScript) -> [String] {
            script.entries.map { "\($0.key.map { "\($0)" } ?? $0.type)|" + $0.sql.split(separator: "\n").filter { !$0.hasPrefix("--") && !$0.isEmpty }.joined(separator: "\n") }
        }
        for (section, record) in [("pre-data", manifest.preData), ("post-data", manifest.postData)] {
            var own: [UInt8] = []
            try pgDump.run(arguments: ["--schema-only", "--section=\(section)"], conninfo: try conninfo(source)) { own.appendBytes($0) }
            let stored = DDLScript(String(decoding: try objects.contents(of: record), as: UTF8.self))
            let expected = DDLScript(String(decoding: own, as: UTF8.self))
            XCTAssertGreaterThan(expected.entries.count, 10, section)
            XCTAssertEqual(statements(stored), statements(expected), section)
            XCTAssertTrue(stored.preamble.contains("SET client_encoding"), "\(section) keeps the session settings")
        }
    }

    /// Large tables' foreign keys are checked on several connections; two that reference each other's
    /// tables may deadlock there and run again one by one: the restore is exact either way.
    func testForeignKeysOfLargeTablesRestoreSideBySide() throws {
        let rows = 150_000  // over RestorePlanner.largeTableBytes of COPY text per table
        let source = try newDatabase("drkit_fk", sql: """
            CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p SELECT generate_series(1, 100);
            CREATE TABLE a (id int PRIMARY KEY, p_id int NOT NULL, b_id int, note text);
            CREATE TABLE b (id int PRIMARY KEY, p_id int NOT NULL, a_id int, note text);
            INSERT INTO a SELECT g, 1 + g % 100, g, repeat(md5(g::text), 3) FROM generate_series(1, \(rows)) g;
            INSERT INTO b SELECT g, 1 + g % 100, g, repeat(md5(g::text), 3) FROM generate_series(1, \(rows)) g;
            ALTER TABLE a ADD FOREIGN KEY (p_id) REFERENCES p, ADD FOREIGN KEY (b_id) REFERENCES b;
            ALTER TABLE b ADD FOREIGN KEY (p_id) REFERENCES p, ADD FOREIGN KEY (a_id) REFERENCES a;
            """)
        let id = try backup(source, extra: ["--split-size", "64"])
        let manifest = try openManifest(id)
        XCTAssertTrue(manifest.tables.filter { $0.name != "p" }.allSatisfy { RestorePlanner.isLarge($0) })
        let target = scratchName("drkit_fk_rt")
        let restored = try restore(id, into: target, extra: ["--key-file", keyFile, "--jobs", "3"])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        try assertSameDatabase(source, target)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated", in: target), "4")
    }

    /// A function body, a view's literal and a comment holding lines that look like pg_dump's own (an
    /// entry header, `--`, a blank line, psql meta-commands, an owner change) restore whole, with and
    /// without `--no-owner`: they are data, not script.
    func testQuotedLinesThatLookLikeScriptLinesRestoreWhole() throws {
        let lookalikes = "\\b\n--\n-- Name: fake; Type: TABLE; Schema: public; Owner: nobody\n--\n\n\\connect elsewhere\nALTER TABLE public.t OWNER TO nobody;\n"
        let source = try newDatabase("drkit_quoted", sql: """
            CREATE TABLE t (id int PRIMARY KEY, v text);
            INSERT INTO t VALUES (1, '\(lookalikes)');
            CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $fn$ SELECT '\(lookalikes)' || $$
            \\restrict x
            --
            $$ $fn$;
            CREATE VIEW v AS SELECT id, '\(lookalikes)'::text AS z FROM t;
            COMMENT ON TABLE t IS 'first\n\(lookalikes)last';
            """)
        let id = try backup(source)
        let details = """
            SELECT concat_ws('|', (SELECT prosrc FROM pg_proc WHERE proname = 'f'), f(), (SELECT z FROM v), obj_description('t'::regclass, 'pg_class'))
            """
        let expected = try XCTUnwrap(PostgresClientBridge.scalar(details, in: source))
        XCTAssertTrue(expected.contains("\nALTER TABLE public.t OWNER TO nobody;\n' || $$\n\\restrict x\n--\n$$"), expected)
        XCTAssertEqual(expected.components(separatedBy: "\n\\connect elsewhere\n").count, 5, expected)
        for extra in [[], ["--no-owner"]] {
            let target = scratchName("drkit_quoted_r")
            let result = try restore(id, into: target, extra: ["--key-file", keyFile] + extra)
            XCTAssertEqual(result.status, 0, result.stderr)
            try assertSameDatabase(source, target)
            XCTAssertEqual(try PostgresClientBridge.scalar(details, in: target), expected, "\(extra)")
        }
    }

    func testPassphraseBackupAndListWithoutKey() throws {
        let source = try newDatabase("drkit_pp", sql: "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;")
        let env = ["DRKIT_TEST_PASSPHRASE": "a long passphrase for the test"]
        let first = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--passphrase-env", "DRKIT_TEST_PASSPHRASE", "--json"], environment: env)
        XCTAssertEqual(first.status, 0, first.stderr)
        let second = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--no-encrypt", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)

        let list = try Command.drkit(["list", "--repo", repo, "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(entries.count, 2)
        XCTAssertEqual(entries.map { $0["encrypted"] as? Bool }, [false, true], "newest first")
        XCTAssertFalse(list.stdout.contains("\"t\""), "no table names without the key")

        let encryptedId = try XCTUnwrap(entries[1]["backupId"] as? String)
        let target = scratchName("drkit_pp_restored")
        let restored = try Command.drkit(["restore", encryptedId, "--repo", repo, "--target", try conninfo(target), "--passphrase-env", "DRKIT_TEST_PASSPHRASE"], environment: env)
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertTrue(restored.stdout.contains("restore duration (RTO):"), restored.stdout)
        try assertSameDatabase(source, target)

        let plainTarget = scratchName("drkit_plain_restored")
        XCTAssertEqual(try restore("latest", into: plainTarget).status, 0)
        try assertSameDatabase(source, plainTarget)
    }

    /// Each codec round-trips, verify reads it, object names say it, and `drkit cat` output decompresses
    /// with the tool FORMAT.md names for it.
    func testEveryCodecRoundTripsAndCatOutputDecompressesWithTheStatedTool() throws {
        let source = try newDatabase("drkit_codec", sql: """
            CREATE TABLE t (a int PRIMARY KEY, b text); INSERT INTO t VALUES (1, E'x\\ty'), (2, NULL);
            CREATE TABLE big (id int, v text); INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 20000) g;
            """)
        for (codec, ext, decompress) in [("zstd:3", ".zst", "zstd -dc"), ("gzip:6", ".gz", "gunzip -c"), ("none", "", "cat"), ("zstd:19", ".zst", "zstd -dc")] {
            let id = try backup(source, extra: ["--compress", codec])
            let manifest = try openManifest(id)
            XCTAssertEqual("\(manifest.compression.algorithm):\(manifest.compression.level)", codec == "none" ? "none:0" : codec)
            XCTAssertTrue(manifest.allObjects.allSatisfy { $0.name.hasSuffix(ext + ".enc") && !$0.name.dropLast(4).hasSuffix(".gz.zst") }, codec)
            XCTAssertEqual(try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile]).status, 0, codec)
            let small = try XCTUnwrap(manifest.tables.first { $0.name == "t" }?.objects.first?.name)
            let cat = try Command.run("/bin/bash", ["-c", "set -o pipefail; '\(TestServices.drkitExecutable)' cat \(id) \(small) --repo '\(repo)' --key-file '\(keyFile)' | \(decompress)"])
            XCTAssertEqual(cat.status, 0, cat.stderr)
            XCTAssertEqual(cat.stdout, "1\tx\\ty\n2\t\\N\n", codec)
            let ddl = try Command.run("/bin/bash", ["-c", "set -o pipefail; '\(TestServices.drkitExecutable)' cat \(id) \(manifest.preData.name) --repo '\(repo)' --key-file '\(keyFile)' | \(decompress)"])
            XCTAssertTrue(ddl.stdout.contains("CREATE TABLE public.t"), codec)
            let target = scratchName("drkit_codec_rt")
            let restored = try restore(id, into: target, extra: ["--key-file", keyFile])
            XCTAssertEqual(restored.status, 0, restored.stderr)
            try assertSameDatabase(source, target)
        }
    }

    func testCompressFlagRejectsUnknownCodecsAndLevels() throws {
        for bad in ["lz4", "gzip:0", "gzip:10", "zstd:20", "zstd:x", "none:1"] {
            let result = try Command.drkit(["backup", "--db", "dbname=x", "--repo", repo, "--key-file", keyFile, "--compress", bad])
            XCTAssertEqual(result.status, 2, "\(bad): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("--compress"), result.stderr)
        }
        for bad in [["--compress-level", "0"], ["--compress-level", "6", "--compress", "zstd"]] {
            let result = try Command.drkit(["backup", "--db", "dbname=x", "--repo", repo, "--key-file", keyFile] + bad)
            XCTAssertEqual(result.status, 2, "\(bad): \(result.stderr)")
        }
    }

    func testListShowsWholeIdsAndLongDatabaseNames() throws {
        let source = try newDatabase("drkit_a_database_with_a_rather_long_name", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let id = try backup(source)
        let list = try Command.drkit(["list", "--repo", repo])
        XCTAssertEqual(list.status, 0, list.stderr)
        let row = try XCTUnwrap(list.stdout.split(separator: "\n").dropFirst().first)
        XCTAssertTrue(row.hasPrefix(id + " "), "the whole id, then a space: \(row)")
        XCTAssertTrue(row.contains(" \(source) "), "the whole database name: \(row)")
    }

    func testDeprecatedCompressLevelStillMeansGzip() throws {
        let source = try newDatabase("drkit_level", sql: "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);")
        let result = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--compress-level", "4"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("--compress-level is deprecated: use --compress gzip:4"), result.stderr)
        let manifest = try openManifest("latest")
        XCTAssertEqual(manifest.compression.algorithm, "gzip")
        XCTAssertEqual(manifest.compression.level, 4)
    }

    /// Every file of the repository with its bytes (lease objects aside).
    private func snapshotOfRepository(_ root: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let path = enumerator?.nextObject() as? String {
            guard !path.hasPrefix("locks"), !FileManager.default.isDirectory(root + "/" + path) else { continue }
            files[path] = try Data(contentsOf: URL(fileURLWithPath: root + "/" + path))
        }
        return files
    }

    /// Write-once: rotation adds the new key's envelope object and removes the old key's; no object
    /// that existed before (manifest included) changes.
    func testKeyRotationAddsEnvelopesAndEditsNothing() throws {
        let source = try newDatabase("drkit_rot", sql: "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 500);")
        let id = try backup(source)
        let before = try snapshotOfRepository(repo)
        let newKey = workDirectory.appendingPathComponent("new-key").path
        XCTAssertEqual(try Command.drkit(["key", "generate", "--out", newKey]).status, 0)
        let refused = try Command.drkit(["key", "generate", "--out", newKey])
        assertFailure(refused, exitCode: 6, mentions: "already exists")
        let attributes = try FileManager.default.attributesOfItem(atPath: newKey)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)

        let kept = try Command.drkit(["key", "rotate", "--repo", repo, "--key-file", keyFile, "--new-key-file", newKey, "--keep-old-key"])
        XCTAssertEqual(kept.status, 0, kept.stderr)
        let afterKeep = try snapshotOfRepository(repo)
        for (path, bytes) in before { XCTAssertEqual(afterKeep[path], bytes, "\(path) changed") }
        let added = Set(afterKeep.keys).subtracting(before.keys)
        XCTAssertEqual(added.count, 1)
        XCTAssertTrue(added.first?.hasPrefix("\(id)/keys/") ?? false, "\(added)")
        for key in [keyFile, newKey] {
            let verify = try Command.drkit(["verify", id, "--repo", repo, "--key-file", key])
            XCTAssertEqual(verify.status, 0, verify.stderr)
        }

        let rotated = try Command.drkit(["key", "rotate", "--repo", repo, "--key-file", keyFile, "--new-key-file", newKey])
        XCTAssertEqual(rotated.status, 0, rotated.stderr)
        XCTAssertTrue(rotated.stdout.contains("only the new key opens"), rotated.stdout)
        let after = try snapshotOfRepository(repo)
        let removed = Set(before.keys).subtracting(after.keys)
        XCTAssertEqual(removed.count, 1)
        XCTAssertTrue(removed.first?.hasPrefix("\(id)/keys/") ?? false, "only the old envelope goes: \(removed)")
        for (path, bytes) in after where before[path] != nil { XCTAssertEqual(before[path], bytes, "\(path) changed") }

        assertFailure(try restore(id, into: scratchName("drkit_rot_old"), extra: ["--key-file", keyFile]), exitCode: 5, mentions: "wrong key")
        // "Rotating" to the same key keeps the envelope that key opens.
        XCTAssertEqual(try Command.drkit(["key", "rotate", "--repo", repo, "--key-file", newKey, "--new-key-file", newKey]).status, 0)
        XCTAssertEqual(try Command.drkit(["verify", id, "--repo", repo, "--key-file", newKey]).status, 0)
        let target = scratchName("drkit_rot_new")
        XCTAssertEqual(try restore(id, into: target, extra: ["--key-file", newKey]).status, 0)
        try assertSameDatabase(source, target)

        // A copy made now carries the new envelope; the copy opens with the new key only.
        let second = workDirectory.appendingPathComponent("second").path
        XCTAssertEqual(try Command.drkit(["repo", "copy", id, "--from", repo, "--to", second]).status, 0)
        XCTAssertEqual(try Command.drkit(["verify", id, "--repo", second, "--key-file", newKey]).status, 0)
        XCTAssertEqual(try Command.drkit(["verify", id, "--repo", second, "--key-file", keyFile]).status, 5)
    }

    /// A format-1 backup rotates by gaining an envelope object; its manifest is not rewritten, so the
    /// old key keeps opening it, and rotation says so.
    func testKeyRotationOfAFormatOneBackupAddsAnEnvelopeAndSaysTheOldKeyStillOpensIt() throws {
        let fixture = URL(fileURLWithPath: TestServices.packageRoot).appendingPathComponent("Tests/DRKitIntegrationTests/Fixtures/v1-gzip")
        let oldRepo = workDirectory.appendingPathComponent("v1-repo").path
        try FileManager.default.copyItem(atPath: fixture.appendingPathComponent("repo").path, toPath: oldRepo)
        let oldKey = fixture.appendingPathComponent("key").path
        let before = try snapshotOfRepository(oldRepo)
        let rotated = try Command.drkit(["key", "rotate", "--repo", oldRepo, "--key-file", oldKey, "--new-key-file", keyFile])
        XCTAssertEqual(rotated.status, 0, rotated.stderr)
        XCTAssertTrue(rotated.stdout.contains("format 1"), rotated.stdout)
        let after = try snapshotOfRepository(oldRepo)
        for (path, bytes) in before { XCTAssertEqual(after[path], bytes, "\(path) changed") }
        for key in [oldKey, keyFile] {
            let verify = try Command.drkit(["verify", "latest", "--repo", oldRepo, "--key-file", key])
            XCTAssertEqual(verify.status, 0, verify.stderr)
        }
    }
}

extension FileManager {
    func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}

extension PostgresClientBridge {
    static func qualified(_ table: TableRecord) -> String {
        "\"\(table.schema.replacingOccurrences(of: "\"", with: "\"\""))\".\"\(table.name.replacingOccurrences(of: "\"", with: "\"\""))\""
    }
}
