import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

/// A backup killed mid-way is never listed and never picked by `restore latest`.
final class InterruptedBackupTests: DRKitTestCase {
    func testSIGKILLDuringBackupLeavesNothingListedOrRestored() throws {
        let source = try newDatabase("drkit_kill", sql: """
            CREATE TABLE small (id int); INSERT INTO small VALUES (1);
            """)
        let goodId = try backup(source)
        try PostgresClientBridge.execute("""
            CREATE TABLE large (id int, payload text);
            INSERT INTO large SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 400000) g;
            """, in: source)

        let process = try Command.startDrkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile,
                                              "--jobs", "1", "--compress", "zstd:19", "--split-size", "1", "--quiet"])
        // Wait until the second backup has written data objects, then kill it without warning.
        let deadline = Date().addingTimeInterval(60)
        var killedMidway = false
        while Date() < deadline && process.isRunning {
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: repo)) ?? []
            // Backup folders only: the running backup's lease folder (locks/) sits beside them.
            if let running = folders.first(where: { $0 != goodId && BackupId.isValid($0) }),
               let data = try? FileManager.default.contentsOfDirectory(atPath: "\(repo)/\(running)/data"), data.count >= 3 {
                kill(process.processIdentifier, SIGKILL)
                killedMidway = true
                break
            }
            usleep(5_000)
        }
        process.waitUntilExit()
        XCTAssertTrue(killedMidway, "the backup was still running when killed")
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)

        let folders = try FileManager.default.contentsOfDirectory(atPath: repo).filter { BackupId.isValid($0) }
        XCTAssertEqual(folders.count, 2, "the interrupted backup left its objects (for `repo clean`)")
        XCTAssertEqual((try FileManager.default.contentsOfDirectory(atPath: "\(repo)/locks")).count, 1, "and its lease, stale from now on")
        let list = try Command.drkit(["list", "--repo", repo, "--json"])
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(entries.compactMap { $0["backupId"] as? String }, [goodId])

        let target = scratchName("drkit_kill_t")
        let restored = try restore("latest", into: target, extra: ["--key-file", keyFile])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertTrue(restored.stdout.contains(goodId))
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'large'", in: target), "0")
    }
}
