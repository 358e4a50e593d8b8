import XCTest
import Foundation
import TestSupport
@testable import DRKit

/// `--max-rate`: the stored bytes of a backup (a 30 s run), a restore and a `repo copy` go no faster
/// than the rate, and not much slower. Measured around the whole command, so startup, DDL, indexes and
/// the commit count against the rate: the backup's run is long enough for ±5%; the shorter restore
/// and copy are held to never faster than +5% and no slower than -15%.
final class MaxRateTests: DRKitTestCase {
    private func timed(_ arguments: [String]) throws -> (CommandResult, Double) {
        let start = Date()
        let result = try Command.drkit(arguments)
        return (result, Date().timeIntervalSince(start))
    }

    func testBackupRestoreAndCopyHoldTheRate() throws {
        // About 31 MiB of text, stored uncompressed: 30 s at 1 MiB/s.
        let source = try newDatabase("rate_src", sql: """
            CREATE TABLE t (id int PRIMARY KEY, a text, b text);
            INSERT INTO t SELECT g, md5(g::text) || md5((g + 1)::text), md5((g * 7)::text) FROM generate_series(1, 330000) g;
            """)
        let mib = 1_048_576.0
        let (backup, backupSeconds) = try timed(["backup", "--db", try conninfo(source), "--repo", repo, "--no-encrypt", "--compress", "none",
                                                 "--max-rate", "1MiB/s", "--quiet", "--json"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any])
        let stored = try XCTUnwrap((report["storedBytes"] as? NSNumber)?.doubleValue)
        XCTAssertGreaterThan(stored, 28 * mib)
        let backupRate = stored / backupSeconds / mib
        XCTAssertEqual(backupRate, 1.0, accuracy: 0.05, "backup: \(stored) bytes in \(backupSeconds) s")

        let (restore, restoreSeconds) = try timed(["restore", "latest", "--repo", repo, "--target", try conninfo(scratchName("rate_r")),
                                                   "--max-rate", "4MiB/s", "--quiet"])
        XCTAssertEqual(restore.status, 0, restore.stderr)
        let restoreRate = stored / restoreSeconds / mib
        XCTAssertLessThanOrEqual(restoreRate, 4 * 1.05, "restore: \(restoreSeconds) s")
        XCTAssertGreaterThanOrEqual(restoreRate, 4 * 0.85, "restore: \(restoreSeconds) s")

        let second = workDirectory.appendingPathComponent("second").path
        let (copy, copySeconds) = try timed(["repo", "copy", "--all", "--from", repo, "--to", second, "--max-rate", "4MiB/s"])
        XCTAssertEqual(copy.status, 0, copy.stderr)
        let copyRate = stored / copySeconds / mib
        XCTAssertLessThanOrEqual(copyRate, 4 * 1.05, "copy: \(copySeconds) s")
        XCTAssertGreaterThanOrEqual(copyRate, 4 * 0.85, "copy: \(copySeconds) s")

        let bad = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--no-encrypt", "--max-rate", "50"])
        assertFailure(bad, exitCode: 2, mentions: "--max-rate takes a rate with a unit")
    }
}
