import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

/// drkit against the signature-checking S3 server (moto, started by scripts/test.sh).
class S3Tests: DRKitTestCase {
    /// moto here; Ceph RGW in RGWFaultTests, which repeats the fault tests on a real S3 implementation.
    func server() throws -> TestServices.S3 { try TestServices.s3() }

    var s3: TestServices.S3!
    var prefix = ""
    var s3Repo: String { "s3://\(s3.bucket)/\(prefix)" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        s3 = try server()
        prefix = "test-\(UUID().uuidString.prefix(8).lowercased())"
    }

    func drkit(_ args: [String], endpoint: String? = nil, extraEnv: [String: String] = [:]) throws -> CommandResult {
        try Command.drkit(args, environment: s3.environment(endpoint: endpoint).merging(extraEnv) { $1 })
    }

    func aws(_ args: [String], stdin: Data? = nil) throws -> CommandResult {
        try Command.run("/bin/sh", ["-c", "aws --endpoint-url \(s3.endpoint) " + args.map { "'\($0)'" }.joined(separator: " ")],
                        environment: s3.environment(), stdin: stdin)
    }

    /// A store talking to moto directly, to inspect what drkit left there.
    func directStore() throws -> S3Store {
        let config = try S3Configuration.resolve(url: s3Repo, environment: s3.environment())
        return S3Store(configuration: config)
    }

    /// A database whose main table compresses to a bit over 5 MiB, so its object is a multipart upload.
    func multipartDatabase() throws -> String {
        try newDatabase("drkit_s3_big", sql: """
            CREATE TABLE blobs (id int PRIMARY KEY, a text, b text);
            INSERT INTO blobs SELECT g, md5(g::text) || md5((g * 3)::text), md5((g * 7)::text) FROM generate_series(1, 160000) g;
            CREATE TABLE small (id int); INSERT INTO small VALUES (1), (2);
            """)
    }

    func testBackupListVerifyRestoreThroughS3() throws {
        let source = try SharedFixture.database()
        let backup = try drkit(["backup", "--db", try conninfo(source), "--repo", s3Repo, "--key-file", keyFile, "--split-size", "1", "--json"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let list = try drkit(["list", "--repo", s3Repo, "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [Any])?.count, 1)
        XCTAssertEqual(try drkit(["verify", "latest", "--repo", s3Repo, "--key-file", keyFile]).status, 0)
        let target = scratchName("drkit_s3_rt")
        let restore = try drkit(["restore", "latest", "--repo", s3Repo, "--key-file", keyFile, "--target", try conninfo(target)])
        XCTAssertEqual(restore.status, 0, restore.stderr)
        try assertSameDatabase(source, target)
    }

    func testWrongSecretIsAClearAuthenticationError() throws {
        let source = try newDatabase("drkit_s3_auth", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let wrong = s3.environment(secret: "definitely-not-the-secret")
        let backup = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", s3Repo, "--key-file", keyFile], environment: wrong)
        assertFailure(backup, exitCode: 4, mentions: "S3 authentication failed (SignatureDoesNotMatch)")
        XCTAssertFalse(backup.stderr.contains("definitely-not-the-secret"))
        let list = try Command.drkit(["list", "--repo", s3Repo, "--verbose"], environment: wrong)
        assertFailure(list, exitCode: 4, mentions: "SignatureDoesNotMatch")
        XCTAssertTrue(list.stderr.contains("s3: GET"), "verbose trace shown")
        XCTAssertFalse(list.stderr.contains("definitely-not-the-secret"))
        XCTAssertFalse(list.stderr.contains("Signature="), "no signatures in traces")
    }

    func testMultipartObjectDownloadsIdenticallyWithAwsCli() throws {
        let store = try directStore()
        var config = store.configuration
        config.partSize = 5 << 20
        config.uploadConcurrency = 3
        let writerStore = S3Store(configuration: config)
        let payload = SecureRandom.bytes(13 << 20 + 12345)
        let writer = try writerStore.makeWriter(key: "interop/object.bin")
        for start in stride(from: 0, to: payload.count, by: 1 << 20) {
            try writer.write(Array(payload[start..<min(start + (1 << 20), payload.count)]))
        }
        try writer.finish()
        let download = workDirectory.appendingPathComponent("download.bin")
        let cp = try aws(["s3", "cp", "s3://\(s3.bucket)/\(prefix)/interop/object.bin", download.path])
        XCTAssertEqual(cp.status, 0, cp.stderr)
        XCTAssertEqual([UInt8](try Data(contentsOf: download)), payload, "byte-identical")
        let head = try aws(["s3api", "head-object", "--bucket", s3.bucket, "--key", "\(prefix)/interop/object.bin"])
        let etag = (try JSONSerialization.jsonObject(with: Data(head.stdout.utf8)) as? [String: Any])?["ETag"] as? String
        XCTAssertEqual(etag?.hasSuffix("-3\""), true, "uploaded as 3 parts: \(head.stdout)")
        XCTAssertEqual(try writerStore.get(key: "interop/object.bin"), payload, "and drkit reads it back")
        XCTAssertTrue(try store.incompleteWrites().isEmpty)
    }

    func testCatAndVerifyReadObjectsUploadedByAwsCli() throws {
        let source = try multipartDatabase()
        let backup = try drkit(["backup", "--db", try conninfo(source), "--repo", s3Repo, "--key-file", keyFile,
                                "--part-size", "5", "--json"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any])?["backupId"] as? String)
        let objects = try directStore().list(prefix: "\(id)/data/")
        let largest = try XCTUnwrap(objects.max { $0.size < $1.size })
        XCTAssertGreaterThan(largest.size, 5 << 20, "the large table's object went up in parts")
        // Replace the object with a copy that the AWS CLI downloaded and uploaded again.
        let local = workDirectory.appendingPathComponent("object")
        XCTAssertEqual(try aws(["s3", "cp", "s3://\(s3.bucket)/\(prefix)/\(largest.key)", local.path]).status, 0)
        XCTAssertEqual(try aws(["s3", "rm", "s3://\(s3.bucket)/\(prefix)/\(largest.key)"]).status, 0)
        XCTAssertEqual(try aws(["s3", "cp", local.path, "s3://\(s3.bucket)/\(prefix)/\(largest.key)"]).status, 0)

        let object = String(largest.key.dropFirst(id.count + 1))
        let cat = try Command.run("/bin/sh", ["-c", "'\(TestServices.drkitExecutable)' cat \(id) \(object) --repo '\(s3Repo)' --key-file '\(keyFile)' | zstd -dc | wc -l"],
                                  environment: s3.environment())
        XCTAssertEqual(cat.status, 0, cat.stderr)
        XCTAssertEqual(cat.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "160000")
        XCTAssertEqual(try drkit(["verify", id, "--repo", s3Repo, "--key-file", keyFile]).status, 0)
    }

    func testBackupAndRestoreSurviveInjectedFaults() throws {
        let source = try multipartDatabase()
        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 0.25))
        defer { proxy.stop() }
        let backup = try drkit(["backup", "--db", try conninfo(source), "--repo", s3Repo, "--key-file", keyFile,
                                "--part-size", "5", "--split-size", "4", "--json"], endpoint: proxy.endpoint)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let target = scratchName("drkit_s3_faults")
        let restore = try drkit(["restore", "latest", "--repo", s3Repo, "--key-file", keyFile, "--target", try conninfo(target)],
                                endpoint: proxy.endpoint)
        XCTAssertEqual(restore.status, 0, restore.stderr)
        try assertSameDatabase(source, target)
        let injected = proxy.injected
        XCTAssertGreaterThanOrEqual(injected.values.reduce(0, +), 5, "faults were injected: \(injected)")
        XCTAssertGreaterThanOrEqual(injected.keys.count, 4, "several kinds: \(injected)")
        XCTAssertTrue(try directStore().incompleteWrites().isEmpty, "no multipart upload left open")
    }

    /// Real S3 closes idle keep-alive connections; a PUT sent on one dies before any answer. curl then
    /// resends it on a new connection, which needs the body rewound.
    func testUploadsSurviveResetsOfReusedConnections() throws {
        let source = try newDatabase("drkit_s3_reuse", sql: """
            CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
            """)
        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 1.0, faults: [.resetOnReuse], match: "PUT "))
        defer { proxy.stop() }
        let backup = try drkit(["backup", "--db", try conninfo(source), "--repo", s3Repo, "--key-file", keyFile, "--json"],
                               endpoint: proxy.endpoint, extraEnv: ["AWS_MAX_ATTEMPTS": "2"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        XCTAssertGreaterThanOrEqual(proxy.injected[.resetOnReuse] ?? 0, 2, "PUTs on reused connections were reset: \(proxy.injected)")
        XCTAssertEqual(try drkit(["verify", "latest", "--repo", s3Repo, "--key-file", keyFile]).status, 0)
        let target = scratchName("drkit_s3_reuse_rt")
        let restore = try drkit(["restore", "latest", "--repo", s3Repo, "--key-file", keyFile, "--target", try conninfo(target)])
        XCTAssertEqual(restore.status, 0, restore.stderr)
        try assertSameDatabase(source, target)
    }

    func testStoreWritesSurviveResetsOfReusedConnections() throws {
        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 1.0, faults: [.resetOnReuse], match: "PUT "))
        defer { proxy.stop() }
        var config = try S3Configuration.resolve(url: s3Repo, environment: s3.environment(endpoint: proxy.endpoint))
        config.retry = RetryPolicy(maxAttempts: 1)  // curl's own resend must do it, not a retry of ours
        let store = S3Store(configuration: config)
        for n in 0..<6 { try store.put(key: "reuse/\(n)", bytes: Array("object \(n)".utf8)) }
        XCTAssertGreaterThanOrEqual(proxy.injected[.resetOnReuse] ?? 0, 5, "\(proxy.injected)")
        for n in 0..<6 { XCTAssertEqual(try directStore().get(key: "reuse/\(n)"), Array("object \(n)".utf8)) }
    }

    func testFaultsThatNeverClearFailCleanlyAndAbortUploads() throws {
        let source = try multipartDatabase()
        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 1.0, faults: [.internalError, .slowDown], match: "partNumber="))
        defer { proxy.stop() }
        let backup = try drkit(["backup", "--db", try conninfo(source), "--repo", s3Repo, "--key-file", keyFile, "--part-size", "5"],
                               endpoint: proxy.endpoint, extraEnv: ["AWS_MAX_ATTEMPTS": "3"])
        assertFailure(backup, exitCode: 4, mentions: "UploadPart")
        XCTAssertTrue(backup.stderr.contains("after 3 attempts"), backup.stderr)
        XCTAssertTrue(backup.stderr.contains("HTTP 500") || backup.stderr.contains("HTTP 503"), backup.stderr)
        XCTAssertTrue(try directStore().incompleteWrites().isEmpty, "every multipart upload was aborted (ListMultipartUploads is empty)")
        XCTAssertTrue(try directStore().list(prefix: "").filter { $0.key.hasSuffix("manifest.json") }.isEmpty, "no manifest")
        XCTAssertTrue(try drkit(["list", "--repo", s3Repo]).stdout.contains("no completed backups"))
    }

    func testRepoCleanRemovesIncompleteBackupsAndUploads() throws {
        let store = try directStore()
        // An interrupted backup from two days ago: objects but no manifest; and an upload never completed.
        let oldId = BackupId.make(startedAt: Date().addingTimeInterval(-2 * 86400))
        try store.put(key: "\(oldId)/data/00000.0000.copy.zst.enc", bytes: [1, 2, 3])
        let recentId = BackupId.make()
        try store.put(key: "\(recentId)/data/00000.0000.copy.zst.enc", bytes: [4])
        var config = store.configuration
        config.partSize = 5 << 20
        let writer = try S3Store(configuration: config).makeWriter(key: "\(oldId)/data/00001.0000.copy.zst.enc")
        try writer.write(SecureRandom.bytes(6 << 20))  // first part sent, upload left open
        XCTAssertEqual(try store.incompleteWrites().count, 1)

        let dryRun = try drkit(["repo", "clean", "--repo", s3Repo, "--grace", "0s"])
        XCTAssertEqual(dryRun.status, 0, dryRun.stderr)
        XCTAssertTrue(dryRun.stdout.contains("would remove incomplete backup \(oldId)"), dryRun.stdout)
        XCTAssertTrue(dryRun.stdout.contains("would abort incomplete upload"), dryRun.stdout)
        XCTAssertEqual(try store.incompleteWrites().count, 1, "dry run changes nothing")

        let graced = try drkit(["repo", "clean", "--repo", s3Repo, "--grace", "1d", "--execute"])
        XCTAssertTrue(graced.stdout.contains("removed incomplete backup \(oldId)"), graced.stdout)
        XCTAssertFalse(graced.stdout.contains(recentId), "younger than the grace period: left alone")
        XCTAssertTrue(try store.list(prefix: "\(oldId)/").isEmpty)
        XCTAssertFalse(try store.list(prefix: "\(recentId)/").isEmpty)
        // The open upload is younger than a day, so only a zero grace aborts it.
        XCTAssertEqual(try drkit(["repo", "clean", "--repo", s3Repo, "--grace", "0s", "--execute"]).status, 0)
        XCTAssertTrue(try store.incompleteWrites().isEmpty)
        writer.abort()
    }

    /// The answer to CreateMultipartUpload is lost: the retry starts a second upload, and the first,
    /// whose id nobody learned, must not stay open (it costs storage and `repo clean` work forever).
    func testALostCreateMultipartUploadAnswerLeavesNoOrphanUpload() throws {
        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 1.0, faults: [.lostResponse], match: "?uploads= HTTP", maxFaults: 1))
        defer { proxy.stop() }
        var config = try S3Configuration.resolve(url: s3Repo, environment: s3.environment(endpoint: proxy.endpoint))
        config.partSize = 5 << 20
        let payload = SecureRandom.bytes(6 << 20)
        try S3Store(configuration: config).put(key: "orphans/object", bytes: payload)
        XCTAssertEqual(proxy.injected[.lostResponse], 1, "one answer was lost: \(proxy.injected)")
        XCTAssertEqual(try directStore().incompleteWrites(), [], "no multipart upload left open")
        XCTAssertEqual(try directStore().get(key: "orphans/object"), payload)
    }

    /// The answer to CompleteMultipartUpload is lost: the retry finds the upload completed (AWS says
    /// NoSuchUpload), and the object of the expected size is there, so the write succeeds.
    func testALostCompleteMultipartUploadAnswerIsNotAFailure() throws {
        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 1.0, faults: [.lostResponse, .noSuchUpload], match: "?uploadId=", inOrder: true))
        defer { proxy.stop() }
        var config = try S3Configuration.resolve(url: s3Repo, environment: s3.environment(endpoint: proxy.endpoint))
        config.partSize = 5 << 20
        let payload = SecureRandom.bytes(6 << 20)
        try S3Store(configuration: config).put(key: "completed/object", bytes: payload)
        XCTAssertEqual(proxy.injected, [.lostResponse: 1, .noSuchUpload: 1], "one answer was lost, the retry told NoSuchUpload")
        XCTAssertEqual(try directStore().get(key: "completed/object"), payload)
        XCTAssertEqual(try directStore().incompleteWrites(), [], "no multipart upload left open")
    }

    func testStorageCheckPassesAndNamesWhatIsWrong() throws {
        let good = try drkit(["storage", "check", "--repo", s3Repo])
        XCTAssertEqual(good.status, 0, good.stdout + good.stderr)
        for name in ["list", "put", "get", "range read", "list prefix", "multipart", "clock skew", "object lock", "delete", "latency"] {
            XCTAssertTrue(good.stdout.contains("ok    \(name): "), "\(name) in \(good.stdout)")
        }
        XCTAssertTrue(try directStore().list(prefix: "drkit-storage-check/").isEmpty && (try directStore().incompleteWrites().isEmpty), "probes removed")

        var env = s3.environment(secret: "not-the-secret")
        env["AWS_MAX_ATTEMPTS"] = "1"
        let wrongSecret = try Command.drkit(["storage", "check", "--repo", s3Repo], environment: env)
        XCTAssertEqual(wrongSecret.status, 1, wrongSecret.stdout + wrongSecret.stderr)
        XCTAssertTrue(wrongSecret.stdout.contains("FAIL  list: ") && wrongSecret.stdout.contains("S3 authentication failed"), wrongSecret.stdout)
        XCTAssertFalse(wrongSecret.stdout.contains("not-the-secret"))
        XCTAssertFalse(wrongSecret.stdout.contains("the credentials lack"), "a wrong secret is no missing permission: \(wrongSecret.stdout)")

        // An outage (every request answered 503): the check says what to do.
        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 1.0, faults: [.slowDown]))
        defer { proxy.stop() }
        let outage = try drkit(["storage", "check", "--repo", s3Repo], endpoint: proxy.endpoint, extraEnv: ["AWS_MAX_ATTEMPTS": "1"])
        XCTAssertEqual(outage.status, 1, outage.stdout + outage.stderr)
        XCTAssertTrue(outage.stdout.contains("FAIL  list: ") && outage.stdout.contains("retry later"), outage.stdout)

        let missing = try drkit(["storage", "check", "--repo", "s3://drkit-missing-bucket/x"], extraEnv: ["AWS_MAX_ATTEMPTS": "1"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stdout.contains("bucket drkit-missing-bucket does not exist") && missing.stdout.contains("check the endpoint"), missing.stdout)

        let down = try drkit(["storage", "check", "--repo", s3Repo], endpoint: "http://127.0.0.1:9", extraEnv: ["AWS_MAX_ATTEMPTS": "1"])
        XCTAssertEqual(down.status, 1)
        XCTAssertTrue(down.stdout.contains("FAIL  list: ") && down.stdout.contains("127.0.0.1:9"), down.stdout)
    }

    /// Issue 12's bar: 20 of 20 backups through 20% faults (errors, throttling, resets, resets of
    /// reused connections, truncated answers, delays) succeed, verify, and leave no upload open.
    func testTwentyBackupsThroughTwentyPercentFaults() throws {
        let source = try newDatabase("drkit_s3_twenty", sql: """
            CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
            CREATE TABLE u (id int); INSERT INTO u SELECT generate_series(1, 100);
            """)
        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 0.2, seed: 12), lifetime: 600)
        defer { proxy.stop() }
        for round in 0..<20 {
            let backup = try drkit(["backup", "--db", try conninfo(source), "--repo", s3Repo, "--key-file", keyFile, "--quiet"], endpoint: proxy.endpoint)
            XCTAssertEqual(backup.status, 0, "round \(round): \(backup.stderr)")
        }
        XCTAssertGreaterThanOrEqual(proxy.injected.values.reduce(0, +), 20, "faults were injected: \(proxy.injected)")
        let list = try drkit(["list", "--repo", s3Repo, "--json"])
        let ids = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]).compactMap { $0["backupId"] as? String }
        XCTAssertEqual(ids.count, 20)
        for id in ids { XCTAssertEqual(try drkit(["verify", id, "--repo", s3Repo, "--key-file", keyFile, "--quiet"]).status, 0, id) }
        XCTAssertEqual(try directStore().incompleteWrites(), [], "no multipart upload left open")
    }

    /// Object Lock (ransomware): every object of a locked backup carries the retention; `list` shows it;
    /// `forget` keeps a locked backup ("retained until", exit 0), warns that the lock is shorter than the
    /// policy, and removes the backup on a run after the lock has ended.
    func testObjectLockedBackupsAreRetainedByForgetAndRemovedAfterTheLock() throws {
        let bucket = "drkit-lock-\(UUID().uuidString.prefix(8).lowercased())"
        let created = try aws(["s3api", "create-bucket", "--bucket", bucket, "--object-lock-enabled-for-bucket"])
        XCTAssertEqual(created.status, 0, created.stderr)
        let lockRepo = "s3://\(bucket)/\(prefix)"
        // Its large table goes up in parts: Ceph RGW ignores the lock headers of CreateMultipartUpload.
        let source = try multipartDatabase()
        var ids: [String] = []
        for _ in 0..<2 {
            let made = try drkit(["backup", "--db", try conninfo(source), "--repo", lockRepo, "--key-file", keyFile, "--part-size", "5",
                                  "--object-lock", "governance", "--lock-days", "1", "--json"])
            XCTAssertEqual(made.status, 0, made.stderr)
            ids.append(try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any])?["backupId"] as? String))
        }
        let store = S3Store(configuration: try S3Configuration.resolve(url: lockRepo, environment: s3.environment()))
        XCTAssertTrue(try store.list(prefix: ids[0] + "/").contains(where: \.uploadedInParts), "one object went up in parts")
        for object in try store.list(prefix: ids[0] + "/") {
            let lock = try XCTUnwrap(try store.lock(of: object.key), "\(object.key) has no retention")
            XCTAssertEqual(lock.mode, .governance)
            XCTAssertEqual(lock.retainUntil.timeIntervalSinceNow, 86400, accuracy: 600)
        }
        XCTAssertTrue(try store.list(prefix: "locks/").isEmpty, "lease objects are removed, never locked")

        let list = try drkit(["list", "--repo", lockRepo])
        XCTAssertTrue(list.stdout.contains("LOCKED UNTIL") && list.stdout.contains("(governance)"), list.stdout)

        // storage check probes a locked upload in parts, and leaves no version of its probes behind.
        let check = try drkit(["storage", "check", "--repo", lockRepo])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("locked multipart") && check.stdout.contains("governance retention kept"), check.stdout)
        let versions = try aws(["s3api", "list-object-versions", "--bucket", bucket, "--prefix", "\(prefix)/drkit-storage-check/"])
        XCTAssertEqual(versions.status, 0, versions.stderr)
        XCTAssertFalse(versions.stdout.contains("VersionId"), "probe versions left: \(versions.stdout)")

        let forget = try drkit(["forget", "--repo", lockRepo, "--key-file", keyFile, "--keep-last", "1", "--keep-daily", "7", "--execute"])
        XCTAssertEqual(forget.status, 0, forget.stderr)
        XCTAssertTrue(forget.stdout.contains("\(ids[0])") && forget.stdout.contains("retained until"), forget.stdout)
        XCTAssertTrue(forget.stdout.contains("warning: ") && forget.stdout.contains("lock for at least 7 days"), forget.stdout)
        let repository = Repository(store: store)
        XCTAssertEqual(try repository.backups().count, 2)

        // Two days on, the lock has ended: the same policy removes the older backup.
        var policy = RetentionPolicy()
        policy.keepLast = 1
        let later = try Forget.run(repository: repository, policy: policy, keys: KeyOptions(keyFile: keyFile), execute: true,
                                   now: Date().addingTimeInterval(2 * 86400))
        XCTAssertEqual(later.removed, [ids[0]])
        XCTAssertEqual(try repository.backups().map(\.summary.backupId), [ids[1]])

        // A bucket without Object Lock is refused up front.
        let refused = try drkit(["backup", "--db", try conninfo(source), "--repo", s3Repo, "--key-file", keyFile,
                                 "--object-lock", "compliance", "--lock-days", "1"])
        assertFailure(refused, exitCode: 2, mentions: "does not have Object Lock enabled")
    }

    /// A server error while reading a lease is a repository error (exit 4), not corruption (5): that
    /// exit code tells monitoring the backups themselves are in doubt.
    func testAServerErrorReadingALeaseIsARepositoryError() throws {
        let store = try directStore()
        let record = LeaseRecord(holder: "elsewhere", kind: .backup, backupId: nil, host: "another-host.example", pid: 1,
                                 started: Date(), heartbeat: Date())
        try store.put(key: "\(Lease.folder)/elsewhere/hb-1.json", bytes: [UInt8](try JSONCoding.encoder.encode(record)))
        let proxy = try FaultProxy(upstreamPort: s3.port, plan: .init(rate: 1.0, faults: [.internalError], match: "/locks/"))
        defer { proxy.stop() }
        let clean = try drkit(["repo", "clean", "--repo", s3Repo], endpoint: proxy.endpoint, extraEnv: ["AWS_MAX_ATTEMPTS": "2"])
        assertFailure(clean, exitCode: 4, mentions: "reading lease")
        XCTAssertGreaterThan(proxy.injected[.internalError] ?? 0, 0)
    }

    func testAMissingBucketIsNamedAsSuch() throws {
        var env = s3.environment()
        env["AWS_MAX_ATTEMPTS"] = "1"
        let result = try Command.drkit(["list", "--repo", "s3://drkit-no-such-bucket/x"], environment: env)
        assertFailure(result, exitCode: 4, mentions: "bucket drkit-no-such-bucket does not exist at \(s3.endpoint)")
    }
}
