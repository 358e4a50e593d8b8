import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common
import Archive

/// Shared helpers: a temporary repository and key per test, and CLI runs.
class DRKitTestCase: XCTestCase {
    var workDirectory: URL!
    var repo: String { workDirectory.appendingPathComponent("repo").path }
    var keyFile: String { workDirectory.appendingPathComponent("key").path }
    var createdDatabases: [String] = []

    override func setUpWithError() throws {
        workDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("drkit-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
        let generated = try Command.drkit(["key", "generate", "--out", keyFile])
        XCTAssertEqual(generated.status, 0, generated.stderr)
    }

    override func tearDown() {
        createdDatabases.forEach(TestServices.dropDatabase)
        try? FileManager.default.removeItem(at: workDirectory)
    }

    func conninfo(_ database: String) throws -> String { try TestServices.postgres(database: database) }

    /// `database` on a port nothing listens on: the database is down.
    func unreachableConninfo(_ database: String) throws -> String {
        try conninfo(database).replacingOccurrences(of: "port=\(ProcessInfo.processInfo.environment["DRKIT_TEST_PGPORT"] ?? "")", with: "port=1")
    }

    func scratchName(_ prefix: String) -> String {
        let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
        createdDatabases.append(name)
        return name
    }

    func newDatabase(_ prefix: String, sql: String) throws -> String {
        let name = try TestServices.createDatabase(prefix)
        createdDatabases.append(name)
        if !sql.isEmpty { try PostgresClientBridge.execute(sql, in: name) }
        return name
    }

    @discardableResult
    func backup(_ database: String, extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try Command.drkit(["backup", "--db", try conninfo(database), "--repo", repo, "--key-file", keyFile,
                                        "--json", "--split-size", "1"] + extra)
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return try XCTUnwrap(report?["backupId"] as? String, file: file, line: line)
    }

    /// The manifest of a backup in the test repository (`reference`: an id or `latest`), opened with the test key.
    func openManifest(_ reference: String) throws -> BackupManifest {
        let repository = try Repository.open(repo, create: false)
        let file = try repository.resolve(reference)
        return try file.open(dataKey: try KeyOptions(keyFile: keyFile).dataKey(for: file, in: repository))
    }

    func restore(_ reference: String, into database: String, extra: [String] = []) throws -> CommandResult {
        try Command.drkit(["restore", reference, "--repo", repo, "--target", try conninfo(database), "--json"] + extra)
    }

    /// An expected failure: the documented exit code and exactly one `drkit: error:` line on stderr.
    func assertFailure(_ result: CommandResult, exitCode: Int32, mentions: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, exitCode, "stderr: \(result.stderr)", file: file, line: line)
        let errorLines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("drkit: error:") }
        XCTAssertEqual(errorLines.count, 1, "one error line expected: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.contains(mentions), "expected \"\(mentions)\" in: \(result.stderr)", file: file, line: line)
        XCTAssertFalse(result.stderr.contains(TestServices.password), "password leaked", file: file, line: line)
    }

    func assertSameDatabase(_ source: String, _ target: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try DatabaseFingerprint.normalizedSchema(database: source),
                       try DatabaseFingerprint.normalizedSchema(database: target), "schema differs", file: file, line: line)
        let sourceHashes = try DatabaseFingerprint.contentHashes(try conninfo(source))
        XCTAssertFalse(sourceHashes.isEmpty, file: file, line: line)
        XCTAssertEqual(sourceHashes, try DatabaseFingerprint.contentHashes(try conninfo(target)), "content differs", file: file, line: line)
        XCTAssertEqual(try DatabaseFingerprint.sequences(try conninfo(source)),
                       try DatabaseFingerprint.sequences(try conninfo(target)), "sequences differ", file: file, line: line)
    }

    func objectPaths(_ backupId: String, under folder: String = "data") throws -> [String] {
        let dir = workDirectory.appendingPathComponent("repo/\(backupId)/\(folder)")
        return try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted().map { dir.appendingPathComponent($0).path }
    }

    /// A streaming standby of the test server (scripts/pg-standby.sh), stopped after the test with its
    /// physical slot dropped on the primary (and `synchronized_standby_slots` reset, which a test may set:
    /// the primary must not wait for a standby that is gone). Returns its port and the slot's name.
    func startStandby() throws -> (port: String, slot: String) {
        let admin = try Connection(conninfo: try TestServices.postgres())
        let version = Int(try admin.query("SHOW server_version_num").scalar ?? "") ?? 0
        let slot = "drkit_test_standby_\(UInt32.random(in: 0...UInt32.max))"
        let bindir = version >= 180000 ? try TestServices.pg18Bindir() : "/usr/lib/postgresql/\(version / 10000)/bin"
        let started = try Command.run("/bin/bash", [TestServices.packageRoot + "/scripts/pg-standby.sh", "start"],
                                      environment: ["DRKIT_PG_BINDIR": bindir, "DRKIT_STANDBY_SLOT": slot])
        guard started.status == 0 else { throw TestServices.Missing(description: "scripts/pg-standby.sh failed: \(started.stderr)") }
        func exported(_ name: String) throws -> String {
            let line = try XCTUnwrap(started.stdout.split(separator: "\n").first { $0.hasPrefix("export \(name)=") }, started.stdout)
            return String(line.dropFirst("export \(name)=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "'"))
        }
        let directory = try exported("DRKIT_STANDBY_DIR")
        addTeardownBlock {
            _ = try? Command.run("/bin/bash", [TestServices.packageRoot + "/scripts/pg-standby.sh", "stop", directory])
            if version >= 170000 {
                _ = try? admin.execute("ALTER SYSTEM RESET synchronized_standby_slots")
                _ = try? admin.query("SELECT pg_reload_conf()")
            }
            for _ in 0..<100 {
                _ = try? admin.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [slot])
                if (try? admin.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", [slot]).scalar) == "0" { break }
                usleep(100_000)
            }
        }
        return (try exported("DRKIT_STANDBY_PORT"), slot)
    }
}

import PostgresClient

enum PostgresClientBridge {
    static func execute(_ sql: String, in database: String) throws {
        let connection = try Connection(conninfo: try TestServices.postgres(database: database))
        try connection.execute(sql)
    }

    static func scalar(_ sql: String, in database: String) throws -> String? {
        try Connection(conninfo: try TestServices.postgres(database: database)).query(sql).scalar
    }
}
