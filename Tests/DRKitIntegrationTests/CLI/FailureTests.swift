import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

/// Bad input gives one clear error line, the documented exit code, and never a partial restore
/// reported as success.
final class FailureTests: DRKitTestCase {
    let smallSchema = "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat('x', g % 100) FROM generate_series(1, 20000) g; CREATE TABLE u (id int); INSERT INTO u VALUES (1);"

    func testWrongKeyAndWrongPassphrase() throws {
        let source = try newDatabase("drkit_wk", sql: smallSchema)
        let id = try backup(source)
        let otherKey = workDirectory.appendingPathComponent("other").path
        _ = try Command.drkit(["key", "generate", "--out", otherKey])
        let target = scratchName("drkit_wk_t")
        assertFailure(try restore(id, into: target, extra: ["--key-file", otherKey]), exitCode: 5, mentions: "wrong key")
        XCTAssertFalse(try TestServices.databaseExists(target), "nothing created on a key failure")
        assertFailure(try restore(id, into: target), exitCode: 2, mentions: "is encrypted")

        let env = ["PP": "right passphrase", "WRONG": "wrong passphrase"]
        let pp = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--passphrase-env", "PP"], environment: env)
        XCTAssertEqual(pp.status, 0, pp.stderr)
        let wrong = try Command.drkit(["restore", "latest", "--repo", repo, "--target", try conninfo(target), "--passphrase-env", "WRONG"], environment: env)
        assertFailure(wrong, exitCode: 5, mentions: "wrong key")
        XCTAssertFalse(wrong.stderr.contains("wrong passphrase"), "passphrase never printed")
    }

    func testFlippedByteTruncatedAndMissingObjects() throws {
        let source = try newDatabase("drkit_corrupt", sql: smallSchema)
        for damage in ["flip", "truncate", "delete"] {
            let id = try backup(source)
            let victim = try XCTUnwrap(try objectPaths(id).first)
            var bytes = try Data(contentsOf: URL(fileURLWithPath: victim))
            switch damage {
            case "flip": bytes[bytes.count / 2] ^= 0x01
            case "truncate": bytes = bytes.prefix(bytes.count - 100)
            default: try FileManager.default.removeItem(atPath: victim)
            }
            if damage != "delete" { try bytes.write(to: URL(fileURLWithPath: victim)) }
            let target = scratchName("drkit_corrupt_t")
            let result = try restore(id, into: target, extra: ["--key-file", keyFile])
            assertFailure(result, exitCode: 5, mentions: (victim as NSString).lastPathComponent)
            XCTAssertFalse(try TestServices.databaseExists(target), "\(damage): the partial restore was dropped")
        }
    }

    func testUnreachableOrWrongDatabase() throws {
        let unreachable = try Command.drkit(["backup", "--db", "host=127.0.0.1 port=1 user=postgres dbname=x connect_timeout=3", "--repo", repo, "--key-file", keyFile])
        assertFailure(unreachable, exitCode: 3, mentions: "cannot connect")
        let badPassword = try conninfo("postgres").replacingOccurrences(of: "password=\(TestServices.password)", with: "password=not-the-password")
        assertFailure(try Command.drkit(["backup", "--db", badPassword, "--repo", repo, "--key-file", keyFile]),
                      exitCode: 3, mentions: "password authentication failed")
        assertFailure(try Command.drkit(["backup", "--db", try conninfo("no_such_database_here"), "--repo", repo, "--key-file", keyFile]),
                      exitCode: 3, mentions: "does not exist")
        XCTAssertEqual(try Command.drkit(["list", "--repo", repo]).stdout.contains("no completed backups"), true)
    }

    /// Repository locations are checked before any work: credentials on a URL are refused without
    /// being echoed (D9), a path that climbs out of itself is refused (D11), an unsupported --copy-to
    /// is refused before the backup runs, and an endpoint that refuses connections fails after one
    /// quick retry instead of a minute of backoff.
    func testRepositoryLocationsAreCheckedUpFrontAndSecretsNeverEchoed() throws {
        let env = ["AWS_ACCESS_KEY_ID": "AKIATESTTESTTEST", "AWS_SECRET_ACCESS_KEY": "not-used-here"]
        let secret = "SECRETVALUE123"
        for location in ["s3://AKIAXXXX:\(secret)@bucket/p", "s3://bucket/p?endpoint=http://AK:\(secret)@127.0.0.1:1"] {
            let result = try Command.drkit(["list", "--repo", location], environment: env)
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains("cannot carry credentials"), result.stderr)
            XCTAssertFalse(result.stdout.contains(secret) || result.stderr.contains(secret), "secret echoed: \(result.stderr)")
        }
        let fromEnvironment = try Command.drkit(["list", "--repo", "s3://bucket/p"], environment: env.merging(["AWS_ENDPOINT_URL": "http://AK:\(secret)@127.0.0.1:1"]) { $1 })
        assertFailure(fromEnvironment, exitCode: 2, mentions: "cannot carry credentials")
        XCTAssertFalse(fromEnvironment.stderr.contains(secret))

        for location in ["file:///nonexistent/../..", "/tmp/drkit-nowhere/../.."] {
            let result = try Command.drkit(["repo", "clean", "--repo", location])
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains("climbs out of itself") || result.stderr.contains("cannot be the filesystem root"), result.stderr)
        }
        XCTAssertEqual(try Command.drkit(["list", "--repo", "file:///"]).status, 2, "the filesystem root is no repository")

        let source = try newDatabase("drkit_copy_to_checked", sql: "CREATE TABLE t (id int);")
        let copyTo = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--copy-to", "ftp://host/x"])
        XCTAssertEqual(copyTo.status, 2, copyTo.stderr)
        XCTAssertTrue(copyTo.stderr.contains("--copy-to: repository scheme \"ftp://\" is not supported"), copyTo.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo), "no backup was made")

        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        let metrics = try Command.drkit(["forget", "--repo", repo, "--keep-last", "1", "--metrics-file", "/nonexistent-dir/drkit.prom"])
        XCTAssertEqual(metrics.status, 0, metrics.stderr)
        XCTAssertTrue(metrics.stderr.contains("warning: metrics file /nonexistent-dir/drkit.prom not written: ") && metrics.stderr.contains("No such file or directory"),
                      "the warning says why: \(metrics.stderr)")

        let refused = try Command.drkit(["list", "--repo", "s3://bucket/p?endpoint=http://127.0.0.1:1", "--verbose"], environment: env)
        assertFailure(refused, exitCode: 4, mentions: "Couldn't connect to server")
        XCTAssertEqual(refused.stderr.components(separatedBy: "s3: retrying").count - 1, 1, "one quick retry: \(refused.stderr)")
    }

    func testRestoreRefusesNonEmptyTargetAndTheSource() throws {
        let source = try newDatabase("drkit_ne", sql: smallSchema)
        let id = try backup(source)
        let occupied = try newDatabase("drkit_occupied", sql: "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42);")
        assertFailure(try restore(id, into: occupied, extra: ["--key-file", keyFile]), exitCode: 6, mentions: "not empty")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT id FROM keep_me", in: occupied), "42", "untouched")
        assertFailure(try restore(id, into: source, extra: ["--key-file", keyFile]), exitCode: 6, mentions: "came from")

        let cleaned = try restore(id, into: occupied, extra: ["--key-file", keyFile, "--clean"])
        XCTAssertEqual(cleaned.status, 0, cleaned.stderr)
        try assertSameDatabase(source, occupied)

        let empty = try newDatabase("drkit_empty", sql: "")
        XCTAssertEqual(try restore(id, into: empty, extra: ["--key-file", keyFile]).status, 0, "an empty database is used as is")
    }

    func testRestoreWithoutOwnersOrPrivilegesWhenRolesAreMissing() throws {
        let role = "drkit_owner_\(UInt32.random(in: 0...UInt32.max))"
        try PostgresClientBridge.execute("CREATE ROLE \(role)", in: "postgres")
        defer { try? PostgresClientBridge.execute("DROP ROLE IF EXISTS \(role)", in: "postgres") }
        let source = try newDatabase("drkit_owned", sql: """
            CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);
            ALTER TABLE t OWNER TO \(role); GRANT SELECT ON t TO \(role);
            """)
        let id = try backup(source)
        try PostgresClientBridge.execute("DROP DATABASE \(source)", in: "postgres")
        createdDatabases.removeAll { $0 == source }
        try PostgresClientBridge.execute("DROP ROLE \(role)", in: "postgres")  // the role is gone on the "new cluster"

        let failing = try restore(id, into: scratchName("drkit_owned_fail"), extra: ["--key-file", keyFile])
        assertFailure(failing, exitCode: 3, mentions: "does not exist")
        let target = scratchName("drkit_owned_ok")
        let ok = try restore(id, into: target, extra: ["--key-file", keyFile, "--no-owner", "--no-privileges"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM t", in: target), "2")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 't'", in: target), "postgres")
    }

    func testUsageErrors() throws {
        let source = try newDatabase("drkit_usage", sql: smallSchema)
        assertFailure(try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo]), exitCode: 2, mentions: "no key")
        assertFailure(try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", "/nonexistent/key"]),
                      exitCode: 2, mentions: "cannot read key file")
        let badKey = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--no-encrypt", "--jobs", "0"])
        XCTAssertEqual(badKey.status, 2, badKey.stderr)
        assertFailure(try Command.drkit(["restore", "nope", "--repo", repo, "--target", try conninfo("x")]), exitCode: 4, mentions: "does not exist")
        try backup(source)
        assertFailure(try Command.drkit(["restore", "nope", "--repo", repo, "--target", try conninfo("x")]), exitCode: 4, mentions: "not found")
        assertFailure(try Command.drkit(["list", "--repo", "s3x://bucket"]), exitCode: 2, mentions: "not supported")
    }
}
