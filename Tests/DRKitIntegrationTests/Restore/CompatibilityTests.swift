import XCTest
import Foundation
import TestSupport
@testable import DRKit

/// Backups written by earlier drkit versions keep listing, verifying and restoring.
final class CompatibilityTests: DRKitTestCase {
    func testGzipBackupFromBeforeTheCodecSeamRestoresIdentically() throws {
        let fixture = URL(fileURLWithPath: TestServices.packageRoot).appendingPathComponent("Tests/DRKitIntegrationTests/Fixtures/v1-gzip")
        let oldRepo = workDirectory.appendingPathComponent("v1-repo")
        try FileManager.default.copyItem(at: fixture.appendingPathComponent("repo"), to: oldRepo)
        let oldKey = fixture.appendingPathComponent("key").path

        let list = try Command.drkit(["list", "--repo", oldRepo.path, "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(entries.first?["backupId"] as? String, "20261130T194446Z-35f1ad", "a whole-second id is still listed")
        let verify = try Command.drkit(["verify", "latest", "--repo", oldRepo.path, "--key-file", oldKey])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)

        let source = try newDatabase("drkit_v1_source", sql: try String(contentsOf: fixture.appendingPathComponent("source.sql"), encoding: .utf8))
        let target = scratchName("drkit_v1_restored")
        let restored = try Command.drkit(["restore", "latest", "--repo", oldRepo.path, "--key-file", oldKey, "--target", try conninfo(target)])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        try assertSameDatabase(source, target)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT sum(total)::text FROM shop.orders", in: target), "5626875.00")
    }
}
