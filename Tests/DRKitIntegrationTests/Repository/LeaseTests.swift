import XCTest
import Foundation
import Archive
import Common
import TestSupport
import ObjectStorage
@testable import DRKit

/// Leases between a running backup and `repo clean` / `key rotate` (issue "repository", F3 and F5).
/// The backup is paused with SIGSTOP between objects, so each interleaving is forced, not hoped for.
final class LeaseTests: DRKitTestCase {
    private var paused: Process?

    override func tearDown() {
        if let paused, paused.isRunning {
            kill(paused.processIdentifier, SIGCONT)
            paused.terminate()
        }
        super.tearDown()
    }

    private func largeDatabase(_ prefix: String) throws -> String {
        try newDatabase(prefix, sql: """
            CREATE TABLE large (id int, payload text);
            INSERT INTO large SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 120000) g;
            """)
    }

    /// Starts a slow backup and stops it (SIGSTOP) once it has stored data objects; returns its id.
    private func pausedBackup(of database: String, stderr: Pipe) throws -> (Process, String) {
        let process = try Command.startDrkit(["backup", "--db", try conninfo(database), "--repo", repo, "--key-file", keyFile,
                                              "--jobs", "1", "--compress", "zstd:19", "--split-size", "1", "--quiet"], stderr: stderr)
        paused = process
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            let folders = ((try? FileManager.default.contentsOfDirectory(atPath: repo)) ?? []).filter { BackupId.isValid($0) }
            if let id = folders.first, let data = try? FileManager.default.contentsOfDirectory(atPath: "\(repo)/\(id)/data"), data.count >= 2 {
                kill(process.processIdentifier, SIGSTOP)
                return (process, id)
            }
            usleep(5_000)
        }
        XCTFail("the backup finished or stalled before it stored two data objects")
        throw DRKitError(.tool, "backup not paused")
    }

    private func resume(_ process: Process) -> Int32 {
        kill(process.processIdentifier, SIGCONT)
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// F3: clean with --grace 0s while a backup runs leaves it alone; the backup completes and verifies.
    func testCleanLeavesARunningBackupAlone() throws {
        let source = try largeDatabase("drkit_lease_live")
        let stderr = Pipe()
        let (process, id) = try pausedBackup(of: source, stderr: stderr)
        let before = try FileManager.default.contentsOfDirectory(atPath: "\(repo)/\(id)/data").count
        let clean = try Command.drkit(["repo", "clean", "--repo", repo, "--grace", "0s", "--execute"])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertTrue(clean.stdout.contains("left alone: backup \(id) is running (backup \(id) on "), clean.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(repo)/\(id)/data").count, before, "nothing of it removed")
        XCTAssertEqual(resume(process), 0, String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        XCTAssertEqual(try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile]).status, 0)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: "\(repo)/locks"))?.count ?? 0, 0, "the lease is released")
    }

    /// F3: a backup frozen past the stale timeout loses its lease to a clean on another host (here: its
    /// lease objects removed by hand, as that clean would); when it resumes it must fail rather than
    /// commit a manifest naming removed objects. No listed backup is broken.
    func testABackupWhoseStaleLeaseWasBrokenFailsInsteadOfCommitting() throws {
        let source = try largeDatabase("drkit_lease_stale")
        let stderr = Pipe()
        let (process, id) = try pausedBackup(of: source, stderr: stderr)
        try FileManager.default.removeItem(atPath: "\(repo)/\(Lease.folder)")
        let clean = try Command.drkit(["repo", "clean", "--repo", repo, "--grace", "0s", "--execute"])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertTrue(clean.stdout.contains("removed incomplete backup \(id)"), clean.stdout)
        let status = resume(process)
        let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertNotEqual(status, 0, "the backup must not succeed")
        XCTAssertTrue(message.contains("lease of backup \(id) on") && message.contains("was broken by another command"), message)
        let list = try Command.drkit(["list", "--repo", repo])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertFalse(list.stdout.contains(id), "never listed: \(list.stdout)")
    }

    /// D7: a stale timeout shorter than five heartbeats is refused, and a lease whose holder is a live
    /// process of this host is never broken, however old its heartbeat.
    func testCleanNeverBreaksTheLeaseOfALiveLocalProcess() throws {
        let short = try Command.drkit(["repo", "clean", "--repo", repo, "--stale-after", "3s"])
        XCTAssertEqual(short.status, 2, short.stderr)
        XCTAssertTrue(short.stderr.contains("--stale-after must be at least 5m"), short.stderr)
        let environment = identities
        for (repository, location) in try repositoriesOnEveryStore("live-lease") {
            let id = BackupId.make(startedAt: Date().addingTimeInterval(-7200))
            try repository.store.put(key: "\(id)/data/00000.copy", bytes: [1, 2, 3])
            let old = Date().addingTimeInterval(-3600)
            let record = LeaseRecord(holder: "\(id)-live", kind: .backup, backupId: id, host: ProcessInfo.processInfo.hostName,
                                     pid: getpid(), started: old, heartbeat: old)
            try repository.store.put(key: "\(Lease.folder)/\(record.holder)/hb-1.json", bytes: [UInt8](try JSONCoding.encoder.encode(record)))
            let clean = try Command.drkit(["repo", "clean", "--repo", location, "--grace", "0s", "--stale-after", "5m", "--execute"], environment: environment)
            XCTAssertEqual(clean.status, 0, clean.stderr)
            XCTAssertTrue(clean.stdout.contains("left alone: backup \(id) is running"), "\(location): \(clean.stdout)")
            XCTAssertFalse(clean.stdout.contains("broke"), clean.stdout)
            XCTAssertEqual(try repository.objects(of: id).count, 1, "\(location): nothing of it removed")
        }
    }

    /// A backup whose lease clean breaks as stale (a frozen holder on another host) is abandoned: it is
    /// removed in the same run, not reported as "possibly still running" because it is recent. Clean
    /// walks only backup folders: a file of someone else's beside them is never touched or read.
    func testCleanRemovesTheBackupOfALeaseItBreaksAndWalksOnlyItsOwnLayout() throws {
        let repository = try Repository.open(repo, create: true)
        let id = BackupId.make(startedAt: Date().addingTimeInterval(-60))
        try repository.store.put(key: "\(id)/data/00000.copy", bytes: [1, 2, 3])
        try repository.store.put(key: "unrelated/notes.txt", bytes: Array("not drkit's".utf8))
        let old = Date().addingTimeInterval(-3600)
        let record = LeaseRecord(holder: "\(id)-frozen", kind: .backup, backupId: id, host: "another-host.example", pid: 4242, started: old, heartbeat: old)
        try repository.store.put(key: "\(Lease.folder)/\(record.holder)/hb-1.json", bytes: [UInt8](try JSONCoding.encoder.encode(record)))
        let clean = try Command.drkit(["repo", "clean", "--repo", repo, "--execute"])
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertTrue(clean.stdout.contains("broke stale lease: backup \(id) on another-host.example"), clean.stdout)
        XCTAssertTrue(clean.stdout.contains("removed incomplete backup \(id)"), clean.stdout)
        XCTAssertFalse(clean.stdout.contains("possibly still running"), clean.stdout)
        XCTAssertEqual(try repository.objects(of: id), [])
        XCTAssertEqual(try repository.store.get(key: "unrelated/notes.txt"), Array("not drkit's".utf8))
    }

    /// D8: a heartbeat after the lease was broken never writes it again; the holder learns it was
    /// broken at its next check, with the lease message.
    func testAHeartbeatNeverRecreatesABrokenLease() throws {
        for (repository, _) in try repositoriesOnEveryStore("heartbeat") {
            let lease = try Lease.acquire(.backup, backupId: "x", repository: repository)
            defer { lease.release() }
            XCTAssertNoThrow(try lease.throwIfBroken())
            try repository.store.delete(keys: try repository.store.list(prefix: Lease.folder + "/").map(\.key))
            XCTAssertThrowsError(try lease.beat()) { XCTAssertTrue("\($0)".contains("was broken by another command"), "\($0)") }
            // What a backup asks before each object: it stops at its next object, not at its commit.
            XCTAssertThrowsError(try lease.throwIfBroken()) { XCTAssertTrue("\($0)".contains("was broken by another command"), "\($0)") }
            XCTAssertEqual(try repository.store.list(prefix: Lease.folder + "/"), [], "\(repository.store.location): the lease is not written again")
            XCTAssertThrowsError(try lease.confirmHeld()) { XCTAssertTrue("\($0)".contains("was broken by another command"), "\($0)") }
            XCTAssertEqual(try repository.store.list(prefix: Lease.folder + "/"), [])
        }
    }

    /// The same lease rules hold on a directory, moto and Ceph RGW: each repository with the location
    /// the CLI opens it by.
    private func repositoriesOnEveryStore(_ name: String) throws -> [(repository: Repository, location: String)] {
        let runId = "\(name)-\(UUID().uuidString.prefix(8).lowercased())"
        var settings = StorageSettings()
        settings.environment = identities
        let locations = [repo, try TestServices.s3().repository(runId, profile: "moto"), try TestServices.rgw().repository(runId, profile: "ceph")]
        return try locations.map { (try Repository.open($0, create: true, s3: settings), $0) }
    }

    private var identities: [String: String] { (try? TestServices.twoIdentities(in: workDirectory)) ?? [:] }


    /// The lease of a killed process of this host (a rotation killed with -9) is removed by the next
    /// command that takes a lease, instead of staying until `repo clean`.
    func testTheLeaseOfAKilledLocalProcessIsRemovedByTheNextCommand() throws {
        let repository = try Repository.open(repo, create: true)
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let record = LeaseRecord(holder: "killed-rotation", kind: .rotate, backupId: nil, host: ProcessInfo.processInfo.hostName,
                                 pid: gone.processIdentifier, started: Date(), heartbeat: Date())
        try repository.store.put(key: "\(Lease.folder)/killed-rotation/hb-1.json", bytes: [UInt8](try JSONCoding.encoder.encode(record)))
        let lease = try Lease.acquire(.rotate, repository: repository, conflicts: { $0.kind == .rotate })
        defer { lease.release() }
        XCTAssertEqual(try repository.store.list(prefix: "\(Lease.folder)/killed-rotation/"), [], "the dead holder's lease is gone")
    }

    /// F5: key rotation refuses while a backup runs, naming it, instead of leaving that backup on the old key.
    func testKeyRotationRefusesWhileABackupRuns() throws {
        let source = try largeDatabase("drkit_lease_rotate")
        let newKey = workDirectory.appendingPathComponent("new-key").path
        XCTAssertEqual(try Command.drkit(["key", "generate", "--out", newKey]).status, 0)
        let stderr = Pipe()
        let (process, id) = try pausedBackup(of: source, stderr: stderr)
        let rotate = try Command.drkit(["key", "rotate", "--repo", repo, "--key-file", keyFile, "--new-key-file", newKey])
        assertFailure(rotate, exitCode: 6, mentions: "backup \(id) on")
        XCTAssertEqual(resume(process), 0)
        let again = try Command.drkit(["key", "rotate", "--repo", repo, "--key-file", keyFile, "--new-key-file", newKey])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try Command.drkit(["verify", id, "--repo", repo, "--key-file", newKey]).status, 0, "the finished backup is on the new key")
    }

    /// A backup does not start while a key rotation holds its lease.
    func testBackupRefusedWhileARotationHoldsItsLease() throws {
        let source = try newDatabase("drkit_lease_during_rotation", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let repository = try Repository.open(repo, create: true)
        let rotation = try Lease.acquire(.rotate, repository: repository)
        defer { rotation.release() }
        let result = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile])
        assertFailure(result, exitCode: 6, mentions: "rotate on")
        XCTAssertEqual(try repository.backups().count, 0)
        XCTAssertEqual(try repository.store.list(prefix: "").filter { BackupId.isValid(String($0.key.prefix { $0 != "/" })) }, [], "nothing written")
    }

    /// Before its manifest, a backup checks that every object it wrote is still there: one removed by
    /// hand while it ran (its lease intact) fails the backup instead of committing it.
    func testAnObjectRemovedWhileTheBackupRanFailsTheCommit() throws {
        let source = try largeDatabase("drkit_lease_object")
        let stderr = Pipe()
        let (process, id) = try pausedBackup(of: source, stderr: stderr)
        let stored = try FileManager.default.contentsOfDirectory(atPath: "\(repo)/\(id)/data").filter { !$0.hasPrefix(".") }.sorted()
        try FileManager.default.removeItem(atPath: "\(repo)/\(id)/data/\(stored[0])")
        XCTAssertNotEqual(resume(process), 0)
        let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(message.contains("backup \(id) cannot be committed: 1 of its") && message.contains("data/\(stored[0])"), message)
        XCTAssertFalse(try Command.drkit(["list", "--repo", repo]).stdout.contains(id))
    }

    /// Backups racing `repo clean --grace 0s --execute`, `forget --execute` and `repo copy --all` (whose
    /// destination is cleaned too) in a loop: every backup succeeds, every copy run ends without error,
    /// and every backup listed in either repository verifies. Bounded: 40 rounds on a small database.
    func testCleanRacingBackupsNeverLeavesAListedBrokenBackup() throws {
        let source = try newDatabase("drkit_lease_race", sql: """
            CREATE TABLE a (id int, v text); INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
            CREATE TABLE b (id int); INSERT INTO b SELECT generate_series(1, 5000);
            """)
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        let second = workDirectory.appendingPathComponent("second").path
        for _ in 0..<40 {
            let backup = try Command.startDrkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--split-size", "1", "--quiet"])
            var cleans = 0
            while backup.isRunning && cleans < 50 {
                let clean = try Command.drkit(["repo", "clean", "--repo", repo, "--grace", "0s", "--execute", "--quiet"])
                XCTAssertEqual(clean.status, 0, clean.stderr)
                let forget = try Command.drkit(["forget", "--repo", repo, "--key-file", keyFile, "--keep-last", "3", "--execute", "--json",
                                                "--audit-file", workDirectory.appendingPathComponent("audit.jsonl").path])
                XCTAssertEqual(forget.status, 0, forget.stderr)
                let copy = try Command.drkit(["repo", "copy", "--all", "--from", repo, "--to", second, "--quiet"])
                XCTAssertEqual(copy.status, 0, copy.stdout + copy.stderr)
                let cleanSecond = try Command.drkit(["repo", "clean", "--repo", second, "--grace", "0s", "--execute", "--quiet"])
                XCTAssertEqual(cleanSecond.status, 0, cleanSecond.stderr)
                cleans += 1
            }
            backup.waitUntilExit()
            XCTAssertEqual(backup.terminationStatus, 0, "clean never breaks a live lease, so the backup succeeds")
        }
        let list = try Command.drkit(["list", "--repo", repo, "--json"])
        let ids = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]).compactMap { $0["backupId"] as? String }
        XCTAssertGreaterThanOrEqual(ids.count, 3, "forget keeps the last 3 (and the backups after its last run)")
        for id in ids {
            let verify = try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile])
            XCTAssertEqual(verify.status, 0, "listed and verifies: \(id) \(verify.stdout) \(verify.stderr)")
        }
        let copies = try Command.drkit(["list", "--repo", second, "--json"])
        let copied = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(copies.stdout.utf8)) as? [[String: Any]]).compactMap { $0["backupId"] as? String }
        XCTAssertFalse(copied.isEmpty)
        for id in copied {
            let verify = try Command.drkit(["verify", id, "--repo", second, "--key-file", keyFile])
            XCTAssertEqual(verify.status, 0, "copy listed and verifies: \(id) \(verify.stdout) \(verify.stderr)")
        }
    }
}
