import PostgresClient
import Foundation

/// The schema snapshot ritual: write the live schema under a header, and diff live against it.
public enum SchemaSnapshot {
    public static let headerFirstLine = "-- drkit schema snapshot"
    public static let headerLastLine = "-- end of drkit header"

    public struct Metadata: Sendable {
        public var iteration: String
        public var changes: String
        public var generated: Date
        public var gitCommit: String?
        public var serverVersion: String
        public var pgDumpVersion: String
    }

    /// `pg_dump --schema-only --no-owner --no-privileges` of the live database.
    static func dumpSchema(conninfo: String) throws -> (text: String, serverVersion: String, pgDumpVersion: String) {
        let redacted = (try? ConnectionOptions(conninfo).redacted) ?? "the database"
        let server: (version: String, number: Int)
        do {
            let connection = try Connection(conninfo: conninfo)
            let row = try connection.query("SELECT current_setting('server_version'), current_setting('server_version_num')").rows[0]
            server = (row[0]!, Int(row[1]!) ?? 0)
        } catch {
            throw DRKitError.wrap(error, "cannot connect to \(redacted)")
        }
        let pgDump = try PgDump.locate(serverMajor: server.number / 10000)
        var output: [UInt8] = []
        try pgDump.run(arguments: ["--schema-only", "--no-owner", "--no-privileges"], conninfo: conninfo) { output.appendBytes($0) }
        return (String(decoding: output, as: UTF8.self), server.version, pgDump.version())
    }

    public static func write(conninfo: String, to path: String, iteration: String, changes: String,
                             now: Date = Date()) throws -> Metadata {
        let dump = try dumpSchema(conninfo: conninfo)
        let directory = (path as NSString).deletingLastPathComponent
        let metadata = Metadata(iteration: iteration, changes: changes, generated: now,
                                gitCommit: GitRepository.headCommit(from: directory.isEmpty ? "." : directory),
                                serverVersion: dump.serverVersion, pgDumpVersion: dump.pgDumpVersion)
        let oneLine = { (s: String) in s.split(whereSeparator: \.isNewline).joined(separator: " ") }
        let header = [
            headerFirstLine,
            "-- iteration: \(oneLine(iteration))",
            "-- generated: \(ISO8601DateFormatter().string(from: now))",
            "-- changes: \(oneLine(changes))",
            "-- git commit: \(metadata.gitCommit ?? "none (not in a git repository)")",
            "-- server: PostgreSQL \(dump.serverVersion)",
            "-- pg_dump: \(dump.pgDumpVersion)",
            headerLastLine,
            "",
        ].joined(separator: "\n")
        let body = SchemaText(pgDumpOutput: dump.text).normalized
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        do { try (header + "\n" + body).write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw DRKitError(.usage, "cannot write \(path): \(error.localizedDescription)")
        }
        return metadata
    }

    public static func diff(conninfo: String, snapshotPath: String, exclude: [String]) throws -> SchemaDiff {
        let committed = SchemaText(pgDumpOutput: try readCommitted(snapshotPath)).excluding(exclude)
        let live = SchemaText(pgDumpOutput: try dumpSchema(conninfo: conninfo).text).excluding(exclude)
        let redacted = (try? ConnectionOptions(conninfo).redacted) ?? "live database"
        return SchemaDiff(snapshot: committed, live: live, snapshotLabel: snapshotPath, liveLabel: "live (\(redacted))")
    }
}

extension SchemaSnapshot {
    /// The committed snapshot's text. Refused (exit 2), never diffed: a file that is empty, not UTF-8
    /// text, or neither a drkit snapshot nor pg_dump schema output — so garbage never reads as drift.
    static func readCommitted(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DRKitError(.usage, "cannot read snapshot \(path)")
        }
        guard let text = String(data: data, encoding: .utf8), !text.contains("\u{0}") else {
            throw DRKitError(.usage, "snapshot \(path) is not UTF-8 text; write one with `drkit schema snapshot`")
        }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw DRKitError(.usage, "snapshot \(path) is empty; write one with `drkit schema snapshot`")
        }
        let head = text.split(separator: "\n", maxSplits: 20, omittingEmptySubsequences: true).prefix(20)
        guard head.first == Substring(headerFirstLine) || head.contains(where: { $0.hasPrefix("-- PostgreSQL database dump") }) else {
            throw DRKitError(.usage, "snapshot \(path) is not a schema snapshot (no drkit header, no pg_dump header); write one with `drkit schema snapshot`")
        }
        return text
    }
}

extension PgDump {
    func version() -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--version"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return "unknown" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Reads the checked-out commit straight from `.git`, without running git.
enum GitRepository {
    static func headCommit(from start: String) -> String? {
        var directory = URL(fileURLWithPath: start).standardizedFileURL
        while true {
            let git = directory.appendingPathComponent(".git")
            if let head = try? String(contentsOf: git.appendingPathComponent("HEAD"), encoding: .utf8) {
                let text = head.trimmingCharacters(in: .whitespacesAndNewlines)
                guard text.hasPrefix("ref: ") else { return text }
                let ref = String(text.dropFirst(5))
                if let sha = try? String(contentsOf: git.appendingPathComponent(ref), encoding: .utf8) {
                    return sha.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                if let packed = try? String(contentsOf: git.appendingPathComponent("packed-refs"), encoding: .utf8) {
                    for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) {
                        return String(line.prefix { $0 != " " })
                    }
                }
                return nil
            }
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path { return nil }
            directory = parent
        }
    }
}
