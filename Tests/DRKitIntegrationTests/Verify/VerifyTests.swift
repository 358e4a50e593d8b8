import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

/// verify and parity on real PostgreSQL: they pass on good data and name what is wrong otherwise.
final class VerifyTests: DRKitTestCase {
    let schema = "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 30000) g; CREATE TABLE u (id int); INSERT INTO u VALUES (1), (2);"

    func verify(_ id: String, extra: [String] = ["--key-file"]) throws -> CommandResult {
        var args = ["verify", id, "--repo", repo, "--json"]
        if extra == ["--key-file"] { args += ["--key-file", keyFile] } else { args += extra }
        return try Command.drkit(args)
    }

    func report(_ result: CommandResult) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    func testFreshBackupVerifies() throws {
        let source = try newDatabase("drkit_verify", sql: schema)
        let id = try backup(source)
        let result = try verify(id)
        XCTAssertEqual(result.status, 0, result.stderr)
        let r = try report(result)
        XCTAssertEqual(r["passed"] as? Bool, true)
        XCTAssertEqual(r["rowsChecked"] as? Int, 30002)
        XCTAssertEqual((r["failures"] as? [Any])?.count, 0)
    }

    func testFlippedTruncatedAndDeletedObjectsAreNamed() throws {
        let source = try newDatabase("drkit_verify_bad", sql: schema)
        let id = try backup(source)
        let objects = try objectPaths(id)
        XCTAssertGreaterThanOrEqual(objects.count, 3)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: objects[0]))
        bytes[bytes.count / 3] ^= 0x80
        try bytes.write(to: URL(fileURLWithPath: objects[0]))
        let truncated = try Data(contentsOf: URL(fileURLWithPath: objects[1]))
        try truncated.prefix(truncated.count - 1).write(to: URL(fileURLWithPath: objects[1]))
        try FileManager.default.removeItem(atPath: objects[2])

        let result = try verify(id)
        XCTAssertEqual(result.status, 1, result.stderr)
        let failures = try XCTUnwrap(try report(result)["failures"] as? [[String: Any]])
        let named = Set(failures.compactMap { $0["object"] as? String })
        XCTAssertEqual(named, Set(objects.prefix(3).map { "data/" + ($0 as NSString).lastPathComponent }))
        XCTAssertTrue(failures.allSatisfy { ($0["reason"] as? String)?.isEmpty == false })
        XCTAssertEqual(result.stderr.split(separator: "\n").filter { $0.hasPrefix("drkit: error:") }.count, 1)
    }

    func testAlteredManifestRowCountIsCaught() throws {
        let source = try newDatabase("drkit_verify_rows", sql: schema)
        let result = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--no-encrypt", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let id = try XCTUnwrap(try report(result)["backupId"] as? String)
        let manifestPath = "\(repo)/\(id)/manifest.json"
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifestPath))) as? [String: Any])
        var manifest = try XCTUnwrap(json["manifest"] as? [String: Any])
        var tables = try XCTUnwrap(manifest["tables"] as? [[String: Any]])
        let index = try XCTUnwrap(tables.firstIndex { $0["name"] as? String == "t" })
        var objects = try XCTUnwrap(tables[index]["objects"] as? [[String: Any]])
        objects[0]["rows"] = (objects[0]["rows"] as! Int) - 1
        tables[index]["objects"] = objects
        manifest["tables"] = tables
        json["manifest"] = manifest
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: manifestPath))

        let verified = try verify(id, extra: [])
        XCTAssertEqual(verified.status, 1, verified.stderr)
        let failures = try XCTUnwrap(try report(verified)["failures"] as? [[String: Any]])
        XCTAssertTrue(failures.contains { ($0["object"] as? String) == objects[0]["name"] as? String && ($0["reason"] as? String ?? "").contains("rows") }, "\(failures)")
    }

    func testEncryptedManifestTamperingFailsAuthentication() throws {
        let source = try newDatabase("drkit_verify_sealed", sql: schema)
        let id = try backup(source)
        let manifestPath = "\(repo)/\(id)/manifest.json"
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifestPath))) as? [String: Any])
        var sealed = try XCTUnwrap(Data(base64Encoded: json["sealedManifest"] as! String))
        sealed[sealed.count - 20] ^= 1
        json["sealedManifest"] = sealed.base64EncodedString()
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: manifestPath))
        let result = try verify(id)
        XCTAssertEqual(result.status, 5, result.stderr)
        XCTAssertTrue(result.stderr.contains("authentication"), result.stderr)
    }
}
