import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

/// `drkit repo copy` (issue "storage", second region): between two signature-checking S3 servers with
/// their own credentials (moto and Ceph RGW), between S3 and directories, idempotent, resumable after
/// kill -9, and never listing a half-copied backup.
final class RepositoryCopyTests: DRKitTestCase {
    var moto: TestServices.S3!
    var ceph: TestServices.S3!
    var runId = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        moto = try TestServices.s3()
        ceph = try TestServices.rgw()
        runId = "copy-\(UUID().uuidString.prefix(8).lowercased())"
        // Two identities, one per server, named on each repository's URL: no credentials in the environment.
        identities = try TestServices.twoIdentities(in: workDirectory)
    }

    var identities: [String: String] = [:]

    func s3Repo(_ server: TestServices.S3, profile: String, _ name: String, endpoint: String? = nil) -> String {
        server.repository("\(runId)-\(name)", profile: profile, endpoint: endpoint)
    }

    func drkit(_ args: [String]) throws -> CommandResult {
        try Command.drkit(args, environment: identities)
    }

    func copy(_ args: [String]) throws -> [String: Any] {
        let result = try drkit(["repo", "copy"] + args + ["--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], result.stdout)
    }

    func listedIds(_ repository: String) throws -> [String] {
        let list = try drkit(["list", "--repo", repository, "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let entries = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] ?? []
        return entries.compactMap { $0["backupId"] as? String }.sorted()
    }

    func objectsCopied(_ report: [String: Any]) -> Int {
        ((report["backups"] as? [[String: Any]]) ?? []).reduce(0) { $0 + (($1["objectsCopied"] as? Int) ?? 0) }
    }

    func testCopyBetweenTwoS3ServersWithTheirOwnCredentialsThenToAndFromDirectories() throws {
        let source = try SharedFixture.database()
        let primary = s3Repo(moto, profile: "moto", "primary")
        let secondary = s3Repo(ceph, profile: "ceph", "secondary")
        var ids: [String] = []
        for _ in 0..<2 {
            let backup = try drkit(["backup", "--db", try conninfo(source), "--repo", primary, "--key-file", keyFile, "--split-size", "1", "--json"])
            XCTAssertEqual(backup.status, 0, backup.stderr)
            ids.append(try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any])?["backupId"] as? String))
        }

        // latest, then --all (which adds only the older one), then nothing left to do.
        let latest = try copy(["latest", "--from", primary, "--to", secondary])
        XCTAssertGreaterThan(objectsCopied(latest), 2)
        XCTAssertEqual(try listedIds(secondary), [ids[1]])
        let all = try copy(["--all", "--from", primary, "--to", secondary, "--jobs", "2"])
        XCTAssertEqual((all["backups"] as? [[String: Any]])?.map { $0["status"] as? String }, ["copied", "present"])
        XCTAssertEqual(try listedIds(secondary), ids.sorted())
        XCTAssertEqual(objectsCopied(try copy(["--all", "--from", primary, "--to", secondary])), 0, "a second run transfers nothing")

        // The copy verifies and restores identically, read with the second identity only.
        for id in ids {
            let verify = try drkit(["verify", id, "--repo", secondary, "--key-file", keyFile])
            XCTAssertEqual(verify.status, 0, verify.stderr)
        }
        let target = scratchName("drkit_copy_rt")
        let restore = try drkit(["restore", "latest", "--repo", secondary, "--key-file", keyFile, "--target", try conninfo(target)])
        XCTAssertEqual(restore.status, 0, restore.stderr)
        try assertSameDatabase(source, target)

        // S3 → directory → S3.
        let local = workDirectory.appendingPathComponent("second-region").path
        XCTAssertEqual(objectsCopied(try copy(["--all", "--from", secondary, "--to", local])) > 0, true)
        XCTAssertEqual(try listedIds(local), ids.sorted())
        let back = s3Repo(moto, profile: "moto", "from-directory")
        _ = try copy([ids[0], "--from", local, "--to", back])
        let verify = try drkit(["verify", ids[0], "--repo", back, "--key-file", keyFile])
        XCTAssertEqual(verify.status, 0, verify.stderr)
        // Stored bytes are unchanged end to end: the same manifest, byte for byte.
        let direct = Repository(store: try FileStore(root: URL(fileURLWithPath: local), create: false))
        XCTAssertEqual(try direct.storedManifest(id: ids[0]).bytes,
                       try Repository.open(primary, create: false, s3: settings()).storedManifest(id: ids[0]).bytes)
    }

    private func settings() -> StorageSettings {
        var s = StorageSettings()
        s.environment = identities
        return s
    }

    /// kill -9 at spread-out points of copies slowed down by a proxy: the destination never lists a
    /// backup that fails verify, and the next run (straight to the server) completes the copy.
    func testKilledCopiesNeverLeaveAListedBrokenBackupAndTheNextRunFinishes() throws {
        let database = try newDatabase("drkit_copy_kill", sql: """
            CREATE TABLE big (id int PRIMARY KEY, a text, b text);
            INSERT INTO big SELECT g, md5(g::text) || md5((g * 3)::text), md5((g * 7)::text) FROM generate_series(1, 90000) g;
            CREATE TABLE small (id int); INSERT INTO small VALUES (1);
            """)
        let id = try backup(database, extra: ["--compress", "none"])
        let proxy = try FaultProxy(upstreamPort: moto.port, plan: .init(rate: 0.35, faults: [.slow], match: "PUT", seed: 7))
        defer { proxy.stop() }
        var generator = SplitMix(seed: 2026)
        var interrupted = 0
        for trial in 0..<10 {
            let slowed = s3Repo(moto, profile: "moto", "kill-\(trial)", endpoint: proxy.endpoint)
            let direct = s3Repo(moto, profile: "moto", "kill-\(trial)")
            let process = try Command.startDrkit(["repo", "copy", id, "--from", repo, "--to", slowed, "--jobs", "2", "--quiet"], environment: identities)
            usleep(UInt32(50_000 + generator.next() % 1_500_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()

            // Whatever was interrupted, anything listed must verify.
            let listed = try listedIds(direct)
            if listed.isEmpty { interrupted += 1 }
            for backupId in listed {
                let verify = try drkit(["verify", backupId, "--repo", direct, "--key-file", keyFile])
                XCTAssertEqual(verify.status, 0, "trial \(trial): listed but broken: \(verify.stderr)")
            }
            let resumed = try copy([id, "--from", repo, "--to", direct])
            XCTAssertEqual((resumed["backups"] as? [[String: Any]])?.first?["status"] as? String, listed.isEmpty ? "copied" : "present")
            XCTAssertEqual(try listedIds(direct), [id])
            let verify = try drkit(["verify", id, "--repo", direct, "--key-file", keyFile])
            XCTAssertEqual(verify.status, 0, "trial \(trial): \(verify.stderr)")
            // Nothing the manifest does not name, and no upload left open.
            let store = try Repository.open(direct, create: false, s3: settings()).store
            let expected = try Repository(store: try FileStore(root: URL(fileURLWithPath: repo), create: false)).objects(of: id).map(\.key)
            XCTAssertEqual(try store.list(prefix: id + "/").map(\.key), expected, "trial \(trial)")
            XCTAssertEqual(try (store as! IncompleteWriteListing).incompleteWrites().filter { $0.key.hasPrefix(id) }.count, 0)
        }
        print("copy kill trials: \(interrupted) of 10 killed before the manifest was written")
        XCTAssertGreaterThan(proxy.requests, 0)
    }

    /// `backup --copy-to`: the copy that works is made, the one that fails is named (exit 8), and the
    /// primary backup stands either way.
    func testBackupCopyToAFailingRepositoryKeepsThePrimaryBackup() throws {
        let source = try SharedFixture.database()
        let second = s3Repo(moto, profile: "moto", "second")
        let missing = s3Repo(moto, profile: "moto", "x").replacingOccurrences(of: "s3://\(moto.bucket)/", with: "s3://drkit-no-such-bucket/")
        let result = try drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile,
                                "--copy-to", second, "--copy-to", missing, "--json"])
        assertFailure(result, exitCode: 8, mentions: "drkit-no-such-bucket")
        XCTAssertTrue(result.stderr.contains("is committed to"), result.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let id = try XCTUnwrap(report["backupId"] as? String)
        let copies = try XCTUnwrap(report["copies"] as? [[String: Any]])
        XCTAssertEqual(copies.map { $0["error"] == nil }, [true, false])
        XCTAssertEqual(try listedIds(repo), [id])
        XCTAssertEqual(try listedIds(second), [id])
        let verify = try drkit(["verify", id, "--repo", second, "--key-file", keyFile])
        XCTAssertEqual(verify.status, 0, verify.stderr)
    }

    /// At the destination, a copy in progress is left alone by `repo clean` (even with no grace) and
    /// makes `key rotate` wait; a second copy of the same backup is refused while the first runs.
    func testACopyInProgressIsProtectedAtTheDestination() throws {
        let destination = try Repository.open(workDirectory.appendingPathComponent("second").path, create: true)
        let id = BackupId.make(startedAt: Date())
        try destination.store.put(key: "\(id)/data/00000.0000.copy.zst.enc", bytes: [1, 2, 3])
        let lease = try Lease.acquire(.copy, backupId: id, repository: destination)
        defer { lease.release() }

        let plan = try RepositoryCleaner.execute(try RepositoryCleaner.plan(destination, grace: 0), on: destination)
        XCTAssertEqual(plan.inUse.map(\.backupId), [id])
        XCTAssertTrue(plan.incompleteBackups.isEmpty)
        XCTAssertEqual(try destination.objects(of: id).count, 1)

        XCTAssertThrowsError(try KeyRotation.run(repository: destination, from: .key(Array(repeating: 1, count: 32)),
                                                 to: .key(Array(repeating: 2, count: 32)))) { error in
            XCTAssertEqual((error as? DRKitError)?.code, .refused)
            XCTAssertTrue((error as? DRKitError)?.message.contains("copy \(id)") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try Lease.acquire(.copy, backupId: id, repository: destination, conflicts: { $0.kind == .copy && $0.backupId == id }))
    }

    func testCopyNeedsABackupOrAll() throws {
        for (args, message) in [([String](), "--all"), (["latest", "--all"], "--all")] {
            let result = try drkit(["repo", "copy"] + args + ["--from", repo, "--to", repo + "2"])
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains(message), result.stderr)
        }
        let same = try drkit(["repo", "copy", "latest", "--from", repo, "--to", repo])
        XCTAssertEqual(same.status, 2)
        XCTAssertTrue(same.stderr.contains("same repository"), same.stderr)
    }

    /// `repo copy --object-lock` locks what it writes at the destination; local objects are read-only.
    func testCopyLocksTheDestinationAndLocalObjectsAreReadOnly() throws {
        let id = try backup(try SharedFixture.database())
        for path in try objectPaths(id) + [repo + "/\(id)/manifest.json"] {
            let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
            XCTAssertEqual(mode, 0o444, path)
        }
        let bucket = "drkit-lock-\(UUID().uuidString.prefix(8).lowercased())"
        let created = try Command.run("/bin/sh", ["-c", "aws --endpoint-url \(moto.endpoint) s3api create-bucket --bucket \(bucket) --object-lock-enabled-for-bucket"],
                                      environment: moto.environment())
        XCTAssertEqual(created.status, 0, created.stderr)
        let locked = "s3://\(bucket)/copy?endpoint=\(moto.endpoint.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&profile=moto"
        _ = try copy([id, "--from", repo, "--to", locked, "--object-lock", "governance", "--lock-days", "3"])
        let store = try XCTUnwrap(try Repository.open(locked, create: false, s3: settings()).store as? S3Store)
        let objects = try store.list(prefix: id + "/")
        XCTAssertGreaterThan(objects.count, 3)
        for object in objects {
            XCTAssertEqual(try store.lock(of: object.key)?.retainUntil.timeIntervalSinceNow ?? 0, 3 * 86400, accuracy: 600, object.key)
        }
        let toDirectory = try drkit(["repo", "copy", id, "--from", repo, "--to", workDirectory.appendingPathComponent("d").path,
                                     "--object-lock", "governance", "--lock-days", "3"])
        assertFailure(toDirectory, exitCode: 2, mentions: "is a directory")
    }

    func testADamagedSourceObjectIsNotCopiedAndNothingIsListed() throws {
        let id = try backup(try SharedFixture.database())
        let object = try XCTUnwrap(try objectPaths(id).first)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: object)))
        bytes[bytes.count / 2] ^= 0xFF  // same size, different hash
        try Data(bytes).write(to: URL(fileURLWithPath: object))
        let destination = workDirectory.appendingPathComponent("copy").path
        let result = try drkit(["repo", "copy", id, "--from", repo, "--to", destination])
        assertFailure(result, exitCode: 5, mentions: "does not match its manifest")
        XCTAssertEqual(try listedIds(destination), [])
    }

    /// The destinations every copy-integrity test runs against: a directory, moto and Ceph RGW.
    private func destinations(_ name: String) -> [String] {
        [workDirectory.appendingPathComponent("copy-\(name)").path, s3Repo(moto, profile: "moto", name), s3Repo(ceph, profile: "ceph", name)]
    }

    /// D5: an object an interrupted copy committed, damaged since at the same size, is hashed on the
    /// next run and copied again; the resumed copy lists a backup that verifies.
    func testAResumedCopyHashesTheObjectsAlreadyThere() throws {
        let id = try backup(try SharedFixture.database())
        for destination in destinations("resume-hash") {
            _ = try copy([id, "--from", repo, "--to", destination])
            let store = try Repository.open(destination, create: false, s3: settings()).store
            // As if the first copy had been killed just before its manifest, and an object damaged since.
            try store.delete(keys: ["\(id)/\(ManifestFile.objectName)"])
            let victim = try XCTUnwrap(try store.list(prefix: "\(id)/data/").first?.key)
            var bytes = try store.get(key: victim)
            bytes[bytes.count / 2] ^= 0x01
            try store.delete(keys: [victim])
            try store.put(key: victim, bytes: bytes)
            let resumed = try copy([id, "--from", repo, "--to", destination])
            let outcome = try XCTUnwrap((resumed["backups"] as? [[String: Any]])?.first)
            XCTAssertEqual(outcome["status"] as? String, "copied", destination)
            XCTAssertEqual(outcome["objectsCopied"] as? Int, 1, "the damaged object is copied again: \(outcome)")
            let verify = try drkit(["verify", id, "--repo", destination, "--key-file", keyFile])
            XCTAssertEqual(verify.status, 0, "\(destination): \(verify.stdout) \(verify.stderr)")
        }
    }

    /// D6: an encrypted backup without a key envelope is refused (nothing could open the copy); with a
    /// key given, one whose envelope does not open with it is refused too. Nothing is listed.
    func testAnEncryptedBackupWhoseEnvelopeIsMissingOrDamagedIsNotCopied() throws {
        let id = try backup(try SharedFixture.database())
        let envelopes = try FileManager.default.contentsOfDirectory(atPath: "\(repo)/\(id)/\(KeyEnvelopes.folder)").map { "\(repo)/\(id)/\(KeyEnvelopes.folder)/\($0)" }
        XCTAssertEqual(envelopes.count, 1)
        let original = try Data(contentsOf: URL(fileURLWithPath: envelopes[0]))
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        var wrapped = Array((json["wrappedDataKey"] as? String ?? "").utf8)
        wrapped[4] = wrapped[4] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        json["wrappedDataKey"] = String(decoding: wrapped, as: UTF8.self)
        let damaged = try JSONSerialization.data(withJSONObject: json)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: envelopes[0])

        for destination in destinations("envelope") {
            try FileManager.default.removeItem(atPath: envelopes[0])
            assertFailure(try drkit(["repo", "copy", id, "--from", repo, "--to", destination]), exitCode: 5, mentions: "has no key envelope")
            try damaged.write(to: URL(fileURLWithPath: envelopes[0]))
            assertFailure(try drkit(["repo", "copy", id, "--from", repo, "--to", destination, "--key-file", keyFile]),
                          exitCode: 5, mentions: "cannot be opened with the given key")
            XCTAssertEqual(try listedIds(destination), [], destination)
            try original.write(to: URL(fileURLWithPath: envelopes[0]))
        }
    }

    func testAFormatOneEncryptedBackupNeedsTheKeyToBeCopied() throws {
        let fixture = URL(fileURLWithPath: TestServices.packageRoot).appendingPathComponent("Tests/DRKitIntegrationTests/Fixtures/v1-gzip")
        let oldKey = fixture.appendingPathComponent("key").path
        let destination = workDirectory.appendingPathComponent("copy").path
        let refused = try drkit(["repo", "copy", "latest", "--from", fixture.appendingPathComponent("repo").path, "--to", destination])
        assertFailure(refused, exitCode: 2, mentions: "format 1 and encrypted")
        _ = try copy(["latest", "--from", fixture.appendingPathComponent("repo").path, "--to", destination, "--key-file", oldKey])
        let verify = try drkit(["verify", "latest", "--repo", destination, "--key-file", oldKey])
        XCTAssertEqual(verify.status, 0, verify.stderr)
    }

    /// `forget` at the source keeps a backup a copy is reading (it holds a lease on it), and says why.
    func testForgetSparesABackupBeingCopied() throws {
        let database = try SharedFixture.database()
        let older = try backup(database)
        try backup(database)
        let repository = try Repository.open(repo, create: false)
        let lease = try Lease.acquire(.copy, backupId: older, repository: repository)
        defer { lease.release() }
        var policy = RetentionPolicy()
        policy.keepLast = 1
        let report = try Forget.run(repository: repository, policy: policy, keys: KeyOptions(keyFile: keyFile), execute: true)
        let decision = try XCTUnwrap(report.decisions.first { $0.backupId == older })
        XCTAssertTrue(decision.keep)
        XCTAssertTrue(decision.reasons.first?.hasPrefix("in use by copy") ?? false, "\(decision.reasons)")
        XCTAssertNoThrow(try repository.manifestFile(id: older))
    }
}
