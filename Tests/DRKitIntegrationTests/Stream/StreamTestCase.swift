import XCTest
import Foundation
import TestSupport
@testable import DRKit
import PostgresClient
import Common

/// Streams started by a test, and the slots and publications they create: every one is stopped and
/// dropped in tearDown, whether the test passed or not.
class StreamTestCase: DRKitTestCase {
    var streams: [Process] = []
    var streamedDatabases: [String] = []
    private var logCount = 0

    override func tearDown() {
        for process in streams where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        for database in streamedDatabases { Self.dropStreamObjects(database) }
        super.tearDown()
    }

    /// Terminates what still uses the database's slots (a killed stream's walsender ends by itself, soon),
    /// then drops them; the publication goes with the database.
    static func dropStreamObjects(_ database: String) {
        guard let admin = try? Connection(conninfo: (try? TestServices.postgres()) ?? "") else { return }
        for _ in 0..<100 {
            _ = try? admin.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL", [database])
            _ = try? admin.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", [database])
            let left = (try? admin.query("SELECT count(*) FROM pg_replication_slots WHERE database = $1", [database]).scalar) ?? "0"
            if left == "0" { break }
            usleep(100_000)
        }
        if let connection = try? Connection(conninfo: (try? TestServices.postgres(database: database)) ?? "") {
            _ = try? connection.execute("DROP PUBLICATION IF EXISTS \(Connection.quoteIdentifier(StreamSource.objectName(for: database)))")
        }
    }

    /// `drkit stream` in the background, its stderr in a log file of the work directory.
    func startStream(_ database: String, source: String? = nil, repository: String? = nil, environment: [String: String] = [:],
                     keys: [String]? = nil, extra: [String] = []) throws -> (process: Process, log: URL) {
        if !streamedDatabases.contains(database) { streamedDatabases.append(database) }
        logCount += 1
        let log = workDirectory.appendingPathComponent("stream-\(logCount).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestServices.drkitExecutable)
        process.arguments = ["stream", "--db", try source ?? conninfo(database), "--repo", repository ?? repo] + (keys ?? ["--key-file", keyFile]) + ["--flush-interval", "1s"] + extra
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        streams.append(process)
        return (process, log)
    }

    /// Stops a stream the way systemd does (SIGTERM) and returns its exit status.
    func stopStream(_ process: Process, log: URL) -> Int32 {
        process.terminate()
        process.waitUntilExit()
        if process.terminationStatus != 0 { print(logText(log)) }
        return process.terminationStatus
    }

    func logText(_ log: URL) -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Polls `condition` every 100 ms until it holds; fails (never skips) after `timeout` seconds.
    func waitUntil(_ what: String, timeout: Double = 120, log: URL? = nil, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            // A stream that exited will not make it true: say why now, not at the timeout.
            if let log, let last = streams.last, !last.isRunning {
                throw NSError(domain: "drkit-test", code: 1, userInfo: [
                    NSLocalizedDescriptionKey: "the stream exited (\(last.terminationStatus)) while waiting for \(what): \(logText(log))",
                ])
            }
            usleep(100_000)
        }
        throw NSError(domain: "drkit-test", code: 1, userInfo: [
            NSLocalizedDescriptionKey: "timed out after \(Int(timeout)) s waiting for \(what)\(log.map { ": " + logText($0) } ?? "")",
        ])
    }

    var archive: StreamArchive { get throws { StreamArchive(repository: try Repository.open(repo, create: false)) } }

    /// Waits until the stream has stored (and so confirmed to the server) every transaction committed
    /// before this call: its slot's confirmed position passes the server's WAL position now.
    func waitUntilArchived(_ database: String, log: URL) throws {
        let now = try XCTUnwrap(PostgresClientBridge.scalar("SELECT pg_current_wal_insert_lsn()::text", in: database))
        let slot = StreamSource.objectName(for: database)
        try waitUntil("the stream to store everything up to \(now)", log: log) {
            try PostgresClientBridge.scalar(
                "SELECT (confirmed_flush_lsn >= '\(now)'::pg_lsn)::text FROM pg_replication_slots WHERE slot_name = '\(slot)'",
                in: database) == "true"
        }
    }

    /// The newest archived commit of the database, if any.
    func lastArchivedCommit(_ database: String) throws -> Int64? {
        let archive = try self.archive
        guard let lineage = try archive.lineages(database: database).last else { return nil }
        return try archive.segments(of: lineage.lineage).last?.name.lastCommit
    }

    func segmentCount(_ database: String) throws -> Int {
        let archive = try self.archive
        return try archive.lineages(database: database).reduce(0) { $0 + (try archive.segments(of: $1.lineage).count) }
    }

    /// A base backup linked to the stream has committed.
    func linkedBase(_ database: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: repo) else { return nil }
        return try Repository.open(repo, create: false).backups().first {
            $0.summary.database == database && $0.summary.streamPosition != nil
        }?.summary.backupId
    }

    /// The server's clock now, as a commit time: every transaction committed before this call has a
    /// commit time at or before it.
    func serverNow(_ database: String) throws -> Int64 {
        let text = try XCTUnwrap(PostgresClientBridge.scalar("SELECT clock_timestamp()::text", in: database))
        return try XCTUnwrap(CommitTime.parse(text), text)
    }

    /// pgbench against the test server (`arguments` after the connection), checked to have failed nothing.
    @discardableResult
    func pgbench(_ database: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> CommandResult {
        let result = try Command.run("/usr/bin/env", ["pgbench"] + arguments + [try conninfo(database)])
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        if !arguments.contains("-i") { assertNoFailedTransactions(result, file: file, line: line) }
        return result
    }

    func startPgbench(_ database: String, _ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["pgbench"] + arguments + [try conninfo(database)]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, out)
    }

    /// pgbench's own count of failed transactions is zero: drkit never made a write on the source fail.
    func assertNoFailedTransactions(_ result: CommandResult, file: StaticString = #filePath, line: UInt = #line) {
        assertNoFailedTransactions(output: result.stdout + result.stderr, file: file, line: line)
    }

    func assertNoFailedTransactions(output: String, file: StaticString = #filePath, line: UInt = #line) {
        let failed = output.split(separator: "\n").first { $0.hasPrefix("number of failed transactions:") }
        if let failed { XCTAssertTrue(failed.hasPrefix("number of failed transactions: 0 "), String(failed), file: file, line: line) }
        XCTAssertTrue(output.contains("number of transactions actually processed"), output, file: file, line: line)
    }
}
