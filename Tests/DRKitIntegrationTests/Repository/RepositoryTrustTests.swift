import XCTest
import Foundation
import TestSupport
@testable import DRKit

/// The repository as a system of record: what someone with write access to the repository but
/// without the key can change, and how drkit catches it (issue "repository", defects F1, F2, F4).
final class RepositoryTrustTests: DRKitTestCase {
    private func manifestPath(_ id: String) -> String { "\(repo)/\(id)/manifest.json" }

    private func editManifest(_ id: String, _ edit: (inout [String: Any]) -> Void) throws {
        let url = URL(fileURLWithPath: manifestPath(id))
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted]).write(to: url)
    }

    /// F1: an edited plaintext summary (here a forged snapshot time, database and size) is refused by
    /// everything that decides, and cannot forge a drill's RPO.
    func testEditedSummaryIsRefusedByRestoreVerifyDrillAndKeyedList() throws {
        let source = try newDatabase("drkit_trust_f1", sql: "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);")
        let id = try backup(source)
        try editManifest(id) { json in
            var summary = json["summary"] as! [String: Any]
            summary["snapshotTime"] = "2099-01-01T00:00:00.000Z"
            summary["database"] = "payroll"
            summary["storedBytes"] = 1
            json["summary"] = summary
        }
        let restore = try restore("latest", into: scratchName("drkit_trust_f1_t"), extra: ["--key-file", keyFile])
        assertFailure(restore, exitCode: 5, mentions: "disagrees with its authenticated manifest (database, snapshotTime, storedBytes)")
        assertFailure(try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile]), exitCode: 5, mentions: "edited in the repository")
        assertFailure(try Command.drkit(["list", "--repo", repo, "--key-file", keyFile]), exitCode: 5, mentions: "snapshotTime")

        let keyless = try Command.drkit(["list", "--repo", repo, "--json"])
        XCTAssertEqual(keyless.status, 0, keyless.stderr)
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(keyless.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(entries.first?["verified"] as? Bool, false, "without the key the summary is marked unverified")

        let scenario = workDirectory.appendingPathComponent("drill.yaml").path
        try """
            name: forged-rpo
            repo: \(repo)
            key_file: \(keyFile)
            target: \(try conninfo("postgres"))
            backup: latest
            criteria:
              max_rpo_minutes: 1
            """.write(toFile: scenario, atomically: true, encoding: .utf8)
        let evidence = workDirectory.appendingPathComponent("evidence").path
        let drill = try Command.drkit(["drill", scenario, "--evidence-dir", evidence])
        XCTAssertEqual(drill.status, 5, "a forged summary never passes a drill: \(drill.stdout)")
        XCTAssertTrue(drill.stderr.contains("edited in the repository"), drill.stderr)
        XCTAssertFalse(drill.stdout.contains("PASSED"), drill.stdout)
        assertFailure(try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "1"]), exitCode: 5, mentions: "edited in the repository")
    }

    /// Forged order: the newest backup's plaintext snapshot time moved into the past. With the key,
    /// `restore latest` (and verify, cat) name the edited backup and refuse (exit 5) instead of quietly
    /// taking the one before it.
    func testAnEditedSummaryCannotHideTheNewestBackupFromLatest() throws {
        let source = try newDatabase("drkit_trust_order", sql: "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);")
        let older = try backup(source)
        let newest = try backup(source)
        try editManifest(newest) { json in
            var summary = json["summary"] as! [String: Any]
            summary["snapshotTime"] = "2001-01-01T00:00:00.000Z"
            summary["startedAt"] = "2001-01-01T00:00:00.000Z"
            json["summary"] = summary
        }
        let target = scratchName("drkit_trust_order_t")
        let restore = try restore("latest", into: target, extra: ["--key-file", keyFile])
        assertFailure(restore, exitCode: 5, mentions: "backup \(newest) does not authenticate")
        XCTAssertFalse(restore.stdout.contains(older), restore.stdout)
        XCTAssertFalse(try TestServices.databaseExists(target), "nothing restored")
        assertFailure(try Command.drkit(["verify", "latest", "--repo", repo, "--key-file", keyFile]), exitCode: 5, mentions: newest)
        // Without the key nothing can be authenticated: the summaries' order stands, as list says.
        XCTAssertEqual(try Command.drkit(["verify", older, "--repo", repo, "--key-file", keyFile]).status, 0)
    }

    /// F2: a folder whose name is not the backup inside it (a copied manifest under a newer-looking
    /// name) is refused, so `restore latest` never restores something other than what it names.
    func testCopiedManifestUnderAnotherFolderNameIsRefused() throws {
        let source = try newDatabase("drkit_trust_f2", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let old = try backup(source)
        _ = try backup(source)
        let planted = "20991231T000000000Z-aaaaaa"
        try FileManager.default.createDirectory(atPath: "\(repo)/\(planted)", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: manifestPath(old), toPath: manifestPath(planted))
        assertFailure(try restore("latest", into: scratchName("drkit_trust_f2_t"), extra: ["--key-file", keyFile]),
                      exitCode: 5, mentions: "folder \(planted) holds the manifest of backup \(old)")
        assertFailure(try Command.drkit(["list", "--repo", repo]), exitCode: 5, mentions: "copied or renamed")
        assertFailure(try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "5"]), exitCode: 5, mentions: "copied or renamed")
        assertFailure(try Command.drkit(["drill", "--repo", repo, "--key-file", keyFile, "--restore-latest", "--target", try conninfo("postgres"),
                                         "--evidence-dir", workDirectory.appendingPathComponent("ev").path]), exitCode: 5, mentions: "copied or renamed")

        // Renamed to match, the summary id no longer opens: the id is bound into the manifest's encryption.
        try editManifest(planted) { json in
            var summary = json["summary"] as! [String: Any]
            summary["backupId"] = planted
            json["summary"] = summary
        }
        assertFailure(try restore(planted, into: scratchName("drkit_trust_f2_u"), extra: ["--key-file", keyFile]), exitCode: 5, mentions: planted)
    }

    /// F4: scrypt parameters come from the manifest; out of bounds they are refused at once (exit 5),
    /// instead of crashing, taking a gigabyte, or running for minutes.
    func testOutOfBoundsScryptParametersAreRefusedAtOnce() throws {
        let source = try newDatabase("drkit_trust_f4", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let env = ["PP": "a passphrase for the scrypt test"]
        let made = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--passphrase-env", "PP", "--json"], environment: env)
        XCTAssertEqual(made.status, 0, made.stderr)
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any])?["backupId"] as? String)
        let hostile: [(UInt64, UInt64, UInt64, String)] = [
            (1 << 62, 8, 1, "n=4611686018427387904"), (1 << 20, 8, 1, "256 MiB"), (1 << 24, 8, 1, "n=16777216"),
            (1 << 15, 8, 100_000, "p=100000"), (3000, 8, 1, "not a power of two"),
        ]
        // The envelope is an object of its own (format 2): keys/<fingerprint>.json.
        let keysFolder = URL(fileURLWithPath: repo).appendingPathComponent("\(id)/keys")
        let envelopeURL = keysFolder.appendingPathComponent(try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: keysFolder.path).first))
        for (n, r, p, message) in hostile {
            var envelope = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: envelopeURL)) as? [String: Any])
            var kek = envelope["kek"] as! [String: Any]
            var scrypt = kek["scrypt"] as! [String: Any]
            scrypt["n"] = n
            scrypt["r"] = r
            scrypt["p"] = p
            kek["scrypt"] = scrypt
            envelope["kek"] = kek
            try JSONSerialization.data(withJSONObject: envelope).write(to: envelopeURL)
            let start = Date()
            let verify = try Command.drkit(["verify", id, "--repo", repo, "--passphrase-env", "PP"], environment: env)
            assertFailure(verify, exitCode: 5, mentions: message)
            XCTAssertLessThan(Date().timeIntervalSince(start), 20, "refused before any key derivation (unbounded, these ran for minutes)")
        }
    }

    /// F6: the guard against restoring into the source goes by cluster and database OID, not name:
    /// a renamed source is still refused, even with --clean, and keeps its rows.
    func testRenamedSourceIsStillRefusedWithClean() throws {
        let original = try newDatabase("drkit_trust_f6", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let id = try backup(original)
        let renamed = original + "_renamed"
        try PostgresClientBridge.execute("ALTER DATABASE \(original) RENAME TO \(renamed)", in: "postgres")
        createdDatabases.append(renamed)
        try PostgresClientBridge.execute("INSERT INTO t VALUES (2)", in: renamed)
        let restore = try restore(id, into: renamed, extra: ["--key-file", keyFile, "--clean"])
        assertFailure(restore, exitCode: 6, mentions: "it is the database the backup came from (\(original), renamed")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM t", in: renamed), "2", "the source and its new row are untouched")
    }

    /// F7: neither the password nor sslpassword ever appears on pg_dump's command line (visible in
    /// `ps` to every user); a wrapper records the arguments pg_dump was started with.
    func testPgDumpGetsNoSecretOnItsCommandLine() throws {
        let source = try newDatabase("drkit_trust_f7", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let real = try XCTUnwrap(["/usr/lib/postgresql/15/bin/pg_dump", "/usr/bin/pg_dump"].first { FileManager.default.isExecutableFile(atPath: $0) })
        let record = workDirectory.appendingPathComponent("pg_dump-args").path
        let wrapper = workDirectory.appendingPathComponent("pg_dump").path
        try """
            #!/bin/sh
            printf '%s\\n' "$@" >> '\(record)'
            [ -n "$PGSERVICEFILE" ] && stat -c '%a' "$PGSERVICEFILE" >> '\(record).mode'
            exec '\(real)' "$@"
            """.write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        let conninfo = try conninfo(source) + " sslmode=disable sslpassword=zz-ssl-secret-zz"
        let result = try Command.drkit(["backup", "--db", conninfo, "--repo", repo, "--key-file", keyFile], environment: ["DRKIT_PG_DUMP": wrapper])
        XCTAssertEqual(result.status, 0, result.stderr)
        let arguments = try String(contentsOfFile: record, encoding: .utf8)
        XCTAssertTrue(arguments.contains("--snapshot="), "the wrapper saw pg_dump's arguments: \(arguments)")
        XCTAssertFalse(arguments.contains("zz-ssl-secret-zz"), "sslpassword on the command line")
        XCTAssertFalse(arguments.contains(TestServices.password), "password on the command line")
        XCTAssertTrue(arguments.contains("service=drkit") || arguments.contains("service='drkit'"), arguments)
        XCTAssertEqual(try String(contentsOfFile: record + ".mode", encoding: .utf8).split(separator: "\n").first, "600", "the service file is private")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("drkit-pgservice-") }
        XCTAssertEqual(leftovers, [], "the service file is removed after pg_dump exits")
    }

    /// An unencrypted backup never reads an object through a symbolic link out of the repository.
    func testObjectsLinkedOutOfTheRepositoryAreRefused() throws {
        let source = try newDatabase("drkit_trust_link", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let result = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--no-encrypt", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["backupId"] as? String)
        let outside = workDirectory.appendingPathComponent("outside").path
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let object = try XCTUnwrap(try objectPaths(id).first)
        let name = (object as NSString).lastPathComponent
        try FileManager.default.moveItem(atPath: object, toPath: outside + "/" + name)
        try FileManager.default.createSymbolicLink(atPath: object, withDestinationPath: outside + "/" + name)
        assertFailure(try Command.drkit(["verify", id, "--repo", repo]), exitCode: 4, mentions: "is a symbolic link")
        // A linked folder: data -> outside.
        try FileManager.default.removeItem(atPath: object)
        try FileManager.default.moveItem(atPath: "\(repo)/\(id)/data", toPath: outside + "/data")
        try FileManager.default.moveItem(atPath: outside + "/" + name, toPath: outside + "/data/" + name)
        try FileManager.default.createSymbolicLink(atPath: "\(repo)/\(id)/data", withDestinationPath: outside + "/data")
        assertFailure(try Command.drkit(["verify", id, "--repo", repo]), exitCode: 4, mentions: "resolves outside")
        assertFailure(try restore(id, into: scratchName("drkit_trust_link_t")), exitCode: 4, mentions: "symbolic link")
    }
}
